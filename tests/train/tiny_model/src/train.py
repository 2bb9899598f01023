"""Tiny train: the 'model' is the quality hyperparameter; fail=true raises, as a broken script would."""

import json
import os
from pathlib import Path

hps = json.loads(os.environ.get("SM_HPS", "{}"))
for channel in ("train", "validation"):
    folder = Path(os.environ.get(f"SM_CHANNEL_{channel.upper()}", f"/opt/ml/input/data/{channel}"))
    if not any(folder.glob("*.csv")):
        raise SystemExit(f"channel {channel} has no CSV files")
if hps.get("fail"):
    raise RuntimeError("learning rate exploded: loss is NaN")
config = Path(os.environ["SM_INPUT_CONFIG_DIR"]) / "hyperparameters.json"
assert json.loads(config.read_text(encoding="utf-8"))["quality"] == str(hps["quality"])
model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
(model_dir / "model.json").write_text(json.dumps(hps), encoding="utf-8")
print("trained")
