"""ONNX export of a checkpoint's sampling network (`gan-studio export CKPT --onnx G.onnx`, and the window's
Export dialog), for running a trained generator without PyTorch or this project.

The graph is the network `gan-studio sample` draws from: the EMA copy of the generator where the run kept
one. Each input the family's `generate` reads is a named ONNX input with a dynamic batch axis:

    z       float32, N x noise_dim (drawn from the run's model.noise_distribution)
    codes   float32, N x code_dim: InfoGAN's one-hot categories then continuous codes in [-1, 1] (InfoGAN only)
    labels  int64,   N: class indices (conditional and AC-GAN models only)
    image   float32, N x C x H x W in [-1, 1]: the input of an image-to-image model (its A -> B translation)

The output is what the generator makes, unscaled: "images", N x C x H x W in [-1, 1] (tanh; map with
(x + 1) * 127.5 to 0..255), or, for the 2-D and curve data sets, "samples", N x D in the data's own
coordinates. Sequence models (SeqGAN) are refused: they draw tokens one step at a time.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.checkpoint import atomic_write
from engine.settings import ConfigError

MISSING = "ONNX export needs the onnx and onnxscript packages: pip install 'gan-studio[onnx]'."


class OnnxExportError(ConfigError):
    """A model or setup this export cannot serve; the message is one sentence (a ConfigError, so the CLI
    reports it as it reports a bad setting)."""


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    inputs: tuple
    output: str
    step: int

    def __str__(self) -> str:
        return (f"Wrote {self.path}: the sampling network of step {self.step}, inputs {', '.join(self.inputs)} "
                f"(batch size free), output {self.output}.")


class _ReadKeys(dict):
    """An inputs dict that notes which entries `generate` reads."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


class SamplingNetwork(nn.Module):
    """The family's `generate` over its sampling networks as a module whose positional inputs are `names`."""

    def __init__(self, algorithm, nets: dict, names: tuple):
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        self.algorithm = algorithm
        self.names = names

    def forward(self, *tensors):
        return self.algorithm.generate(dict(zip(self.names, tensors)), dict(self.nets.items()))


class TranslationNetwork(nn.Module):
    """An image-to-image family's A -> B mapping as a module: one input, "image" (N x C x H x W in [-1, 1])."""

    def __init__(self, algorithm, nets: dict, example: torch.Tensor):
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        self.algorithm = algorithm
        with torch.no_grad():  # builds what the family makes on first use (DTN's fixed f), held here as modules
            self.forward(example)
        self.fixed = nn.ModuleList(v for v in vars(algorithm).values() if isinstance(v, nn.Module))

    def forward(self, *tensors):  # one tensor; varargs as SamplingNetwork, so the exporter's shape spec fits both
        return self.algorithm.translate(tensors[0], "AtoB", dict(self.nets.items()))


def sampling_network(sampler, batch: int = 3) -> tuple[nn.Module, tuple, tuple]:
    """(the module, its input names, example inputs of `batch` rows) for a sampler (engine.sampler), or
    OnnxExportError for a family whose samples are not one tensor computed from tensors. An image-to-image
    model exports its A -> B translation, not its preview rows."""
    from engine.latent import latent_for

    algorithm = sampler.algorithm
    family = sampler.config.algorithm
    if hasattr(algorithm, "translate"):
        nets = sampler.sampling_nets()
        example = torch.rand(batch, *sampler.dataset.input_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
        return TranslationNetwork(algorithm, nets, example).eval(), ("image",), (example,)
    example = _ReadKeys(latent_for(sampler, batch, 0).as_dict())
    with torch.no_grad():
        outputs = sampler.generate(example)
    if not isinstance(outputs, torch.Tensor):
        raise OnnxExportError(f"The {family} family's sampling does not return one tensor, so it has no ONNX form.")
    if algorithm.as_text(outputs[:1]) is not None:
        raise OnnxExportError(f"This {family} model writes text one token at a time, sampling each from the "
                              f"previous ones, which an ONNX graph of the network cannot hold; use "
                              f"`gan-studio sample` instead.")
    names = tuple(name for name, value in example.items() if name in example.read and value is not None)
    if any(not isinstance(example[name], torch.Tensor) for name in names):
        raise OnnxExportError(f"The {family} family's sampling inputs are not all tensors, so it has no ONNX form.")
    return SamplingNetwork(algorithm, sampler.sampling_nets(), names).eval(), names, tuple(example[name] for name in names)


def export_onnx(checkpoint, out: str | Path) -> OnnxExport:
    """Write the sampling network of `checkpoint` (a path, a loaded state or a Sampler) to `out`, atomically."""
    try:
        import onnx  # noqa: F401 - both exporters need it
        import onnxscript  # noqa: F401 - the dynamo exporter needs it
    except ImportError:
        raise OnnxExportError(MISSING) from None
    from engine.sampler import Sampler, load_sampler

    sampler = checkpoint if isinstance(checkpoint, Sampler) else load_sampler(checkpoint, device="cpu")
    module, names, example = sampling_network(sampler)
    with torch.no_grad():
        output = "images" if module(*example).dim() == 4 else "samples"
    data = _to_onnx(module, names, example, output)
    out = Path(out)
    if out.is_dir():
        raise OnnxExportError(f"{out} is a folder; give the .onnx file to write.")
    atomic_write(out, lambda handle: handle.write(data))
    return OnnxExport(out, names, output, sampler.step)


def _to_onnx(module: nn.Module, names: tuple, example: tuple, output: str) -> bytes:
    """The serialized model: the dynamo exporter, or the TorchScript one where dynamo fails on this model."""
    import onnx

    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    chatty = logging.getLogger("torch.onnx")  # it names every optional operator library it did not find
    level = chatty.level
    chatty.setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(module, example, input_names=list(names), output_names=[output],
                                        dynamo=True, dynamic_shapes=(tuple({0: batch} for _ in names),),
                                        external_data=False, verbose=False)
            model = program.model_proto
        except Exception as first:
            buffer = io.BytesIO()
            try:
                torch.onnx.export(module, example, buffer, input_names=list(names), output_names=[output],
                                  dynamo=False, dynamic_axes={name: {0: "batch"} for name in (*names, output)})
                _check_free_batch(buffer.getvalue(), module, names, example)
            except Exception:
                root = first.__cause__ or first
                said = re.sub(r"\x1b\[[0-9;]*m", "", str(root)).strip()
                line = said.splitlines()[0] if said else type(root).__name__
                raise OnnxExportError(f"This model's sampling network could not be exported as ONNX: {line}") \
                    from first
            model = onnx.load_from_string(buffer.getvalue())
        finally:
            chatty.setLevel(level)
    model.doc_string = ("GAN Studio sampling network; inputs " + ", ".join(names) + f"; output {output}"
                        + (" in [-1, 1], N x C x H x W" if output == "images" else " in the data's coordinates"))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _check_free_batch(data: bytes, module: nn.Module, names: tuple, example: tuple) -> None:
    """The TorchScript exporter can bake the example's batch size into a reshape: run the model on a bigger
    batch with onnxruntime (where it is installed) and raise unless it matches PyTorch."""
    try:
        import onnxruntime
    except ImportError:
        return
    bigger = tuple(torch.cat([x, x[:1]]) for x in example)
    with torch.no_grad():
        expected = module(*bigger).numpy()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {name: x.numpy() for name, x in zip(names, bigger)})[0]
    if got.shape != expected.shape or abs(got - expected).max() > 1e-4:
        raise ValueError("the batch size is not free in the exported graph")
