"""benchmarks/accelerator.sh at tiny sizes on the CPU: the chosen checks land in one JSON file with
their measurements, the others are absent, and a check past the deadline is recorded, not lost."""
import json
import os
import subprocess

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks",
                      "accelerator.sh")


def run(out, **environ):
  subprocess.run(["bash", SCRIPT, str(out)], check=True, capture_output=True, text=True,
                 env={**os.environ, "SIZE": "tiny", **environ})
  return json.loads((out / "accelerator.json").read_text())


def test_chosen_checks_are_measured_and_the_rest_left_out(tmp_path):
  checks = run(tmp_path, CHECKS="step_baseline_bf16 knn")
  assert set(checks) == {"step_baseline_bf16", "knn"}
  step = checks["step_baseline_bf16"]["result"]
  assert step["img_s"] > 0 and step["step_flops"] > 1e8 and step["device"].startswith("cpu")
  assert step["tflop_s"] > 0 and step["mfu"] is None  # no bfloat16 peak for a CPU
  assert set(checks["knn"]["result"]["recall"]) == {"1", "2", "4", "8"}
  assert 0 < checks["knn"]["result"]["recall"]["1"] <= 1


def test_a_check_past_the_deadline_is_recorded_as_not_run(tmp_path):
  checks = run(tmp_path, CHECKS="knn", DEADLINE_S="10")
  assert checks == {"knn": {"error": "not run: within 30 s of the 10 s deadline"}}
