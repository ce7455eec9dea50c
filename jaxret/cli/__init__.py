"""jaxret's commands, one module each, installed as console scripts and kept runnable from a
checkout as `python -m launch.NAME`:

  jaxret-train            train and evaluate a method from an ml_collections config (cli/train.py)
  jaxret-prepare-data     build a dataset from its published layout into a TFDS folder
  jaxret-convert-weights  a torchvision checkpoint -> an .npz jaxret loads without torch
  jaxret-embed            embed a folder of images with a trained run into a search index
  jaxret-search           the nearest images of an index to query images
  jaxret-evaluate-arrays  score saved embeddings or hash codes under a protocol
  jaxret-plot-curves      a run's training curves as a PNG
  jaxret-export           a run's embedding as serialised StableHLO, served without jaxret's model code

All take absl flags (`--name=value` or `--name value`, `--[no]name` for booleans, underscores in
names) and report a user's mistake as one `error:` line with exit status 2 (`command.run`).
"""
