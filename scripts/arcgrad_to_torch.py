#!/usr/bin/env python3
"""Loads an arcgrad run's checkpoint into PyTorch, and optionally predicts an image with it.

arcgrad's checkpoint.safetensors stores every parameter and buffer under the dotted names
of torchvision-style modules ("model.stem.0.weight", "model.blocks.3.c1.1.running_var",
"criterion.linear.weight", ...), float32, row-major, convolution weights [out, in/groups,
kh, kw] as in PyTorch, plus the optimizer state under "optim/...". This script reads the
file with nothing but PyTorch (the safetensors layout is an 8-byte header length, a JSON
header and the raw tensor bytes), drops the optimizer state and maps the names onto a
backbone module with an `fc` head (cross-entropy runs) or a cosine head `head.weight`
(margin-loss runs): "model.X" -> "X", "criterion.linear.*" -> "fc.*",
"criterion.cosine.weight" -> "head.weight".

  python3 scripts/arcgrad_to_torch.py RUN_DIR                     # list the state dict
  python3 scripts/arcgrad_to_torch.py RUN_DIR --peer torch_peer.py --image cat.png
The second form builds the run's model from a module defining the same architectures
(e.g. the project's torch_peer.py: ResNet18, MobileNetV2, EfficientNetB0), loads the
weights with load_state_dict (strict but for PyTorch's num_batches_tracked counters,
which arcgrad does not keep), and prints the image's top-5 classes the way
`build/predict --checkpoint RUN_DIR image` does, for a side-by-side check.
"""
import argparse, importlib.util, json, os, struct, sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    """{name: tensor} and the metadata dict of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, h in header.items():
        lo, hi = h["data_offsets"]
        t = torch.frombuffer(bytearray(body[lo:hi]), dtype=DTYPES[h["dtype"]]) if hi > lo else \
            torch.empty(0, dtype=DTYPES[h["dtype"]])
        tensors[name] = t.reshape(h["shape"])
    return tensors, meta


def torch_state_dict(run_dir):
    """The backbone + head state dict of a run, with PyTorch-style names."""
    tensors, _ = read_safetensors(os.path.join(run_dir, "checkpoint.safetensors"))
    out = {}
    for name, t in tensors.items():
        if name.startswith("optim/"):
            continue
        if name.startswith("model."):
            out[name[len("model."):]] = t
        elif name.startswith("criterion.linear."):
            out["fc." + name[len("criterion.linear."):]] = t
        elif name == "criterion.cosine.weight":
            out["head.weight"] = t
        else:
            out[name] = t
    return out


# Squeeze-and-excitation layers are fc1/fc2 in arcgrad, as in torchvision's
# SqueezeExcitation; some definitions (torch_peer.py) call them reduce/expand.
SE_ALIASES = {".fc1.": ".reduce.", ".fc2.": ".expand."}


def alias(name, target):
    """name, or its SE alias where only that exists in the target state dict."""
    if name in target:
        return name
    for ours, theirs in SE_ALIASES.items():
        if ours in name and name.replace(ours, theirs) in target:
            return name.replace(ours, theirs)
    return name


PEER_NAMES = {"resnet18": "ResNet18", "mobilenetv2": "MobileNetV2", "efficientnet_b0": "EfficientNetB0"}


def load_peer_model(peer_path, model_name, classes, state):
    spec = importlib.util.spec_from_file_location("peer", peer_path)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    if model_name not in PEER_NAMES:
        sys.exit(f"arcgrad_to_torch: {peer_path} has no definition for model '{model_name}'")
    net = getattr(peer, PEER_NAMES[model_name])(classes)
    if "head.weight" in state:
        net.head = torch.nn.Parameter(state["head.weight"].clone())
    weights = {alias(k, net.state_dict()): v for k, v in state.items() if k != "head.weight"}
    missing, unexpected = net.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked") and k != "head" and
               not (k.startswith("fc.") and "head.weight" in state)]
    if missing or unexpected:
        sys.exit(f"arcgrad_to_torch: names do not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return net.eval()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="an arcgrad run folder (holds checkpoint.safetensors and state.json)")
    p.add_argument("--peer", help="a Python file defining the architectures (e.g. torch_peer.py)")
    p.add_argument("--image", help="an image to predict (needs --peer and python3-pil; the model's input size)")
    a = p.parse_args()
    state = torch_state_dict(a.run)
    with open(os.path.join(a.run, "state.json")) as f:
        run = json.load(f)
    if not a.peer:
        for k, v in state.items():
            print(f"{k:60s} {tuple(v.shape)}")
        return
    classes = run["extra"]["class_names"]
    net = load_peer_model(a.peer, run["config"]["model"], len(classes), state)
    if not a.image:
        print(f"loaded {sum(v.numel() for v in state.values())} values into {type(net).__name__}")
        return
    from PIL import Image  # Debian: python3-pil; only needed here
    c, h, w = run["extra"]["image_shape"]
    pil = Image.open(a.image).convert("L" if c == 1 else "RGB")
    if pil.size != (w, h):
        sys.exit(f"arcgrad_to_torch: {a.image} is {pil.size[0]}x{pil.size[1]}; this check takes {w}x{h} images")
    img = torch.tensor(list(pil.getdata()), dtype=torch.float32).view(h, w, c).permute(2, 0, 1) / 255
    mean = torch.tensor(run["extra"]["stats"]["mean"]).view(-1, 1, 1)
    std = torch.tensor(run["extra"]["stats"]["std"]).view(-1, 1, 1)
    x = ((img[:c] - mean) / std).unsqueeze(0)
    with torch.no_grad():
        f = net.features(x)
        if "head.weight" in state:
            scores, kind = F.normalize(f, dim=1) @ F.normalize(net.head, dim=1).t(), "cosine"
        else:
            scores, kind = F.softmax(net.fc(f), dim=1), "probability"
    top = torch.topk(scores[0], min(5, len(classes)))
    print(a.image)
    for s, i in zip(top.values.tolist(), top.indices.tolist()):
        print(f"  {classes[i]:20s} {kind} {s:.4f}")


if __name__ == "__main__":
    main()
