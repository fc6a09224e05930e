"""Exponential moving averages of the weights during fine-tuning, over a grid of decays (paper Figs. 11, 12).

The paper asks whether averaging the fine-tuning trajectory, instead of interpolating with the zero-shot
weights, gives WiSE-FT's robustness. Two variants, with μ_t = β·μ_{t−1} + (1 − β)·θ_t after step t:

- **debiased** (Fig. 11): μ_0 = 0 and the result is μ_T / (1 − β^T), as in Adam's bias correction. Without the
  correction the average would be pulled toward 0, which for network weights is meaningless.
- **biased toward the zero-shot weights** (Fig. 12): μ_0 = θ_zero-shot and the result is μ_T itself, i.e. the
  zero-shot weights keep the weight β^T: θ_zero-shot·β^T + Σ_t (1−β)β^{T−t} θ_t. Varying β slides along a curve
  from the fine-tuned (β → 0) to the zero-shot (β → 1) model, which is why Fig. 12 lands near WiSE-FT.

One buffer per decay is kept, so one fine-tuning run yields every point of a figure. Floating tensors of the
state dict (parameters and float buffers) are averaged in float32 whatever the model's dtype, because a decay
such as 0.99999 moves a bf16 weight by less than its rounding step; integer buffers (counters, masks) cannot be
averaged and are copied from the latest update.

The debiased average is stored already corrected: m_t = μ_t / (1 − β^t) obeys m_t = m_{t−1} + w_t·(θ_t − m_{t−1})
with w_t = (1 − β)/(1 − β^t), so m_1 = θ_1 exactly, constant weights stay exactly constant, and no tiny 1 − β^t is
ever divided by (it underflows the float32 mantissa early on for β = 0.999999).

State (buffers, step count, decays) is saved as safetensors with a JSON header, no pickle, so a resumed run
continues the averages where they stopped.

Example:
    >>> ema = WeightEMA([0.99, 0.999], mode="debiased")
    >>> for batch in loader:                                  # doctest: +SKIP
    ...     loss.backward(); optimizer.step()
    ...     ema.update(model)
    >>> model.load_state_dict(ema.state_dict_for(0.999))      # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Iterable, Literal, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError, IncompatibleStateError, WiseftError
from ..io import atomic_path

log = logging.getLogger(__name__)

__all__ = ["WeightEMA", "EMA_FORMAT"]

#: ``format`` entry of a saved EMA state's header.
EMA_FORMAT = "wiseft-ema-v1"
Mode = Literal["debiased", "biased"]


def _state_of(model_or_state: torch.nn.Module | Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    if isinstance(model_or_state, torch.nn.Module):
        return model_or_state.state_dict()
    if isinstance(model_or_state, Mapping):
        return model_or_state
    raise WiseftError(f"WeightEMA.update: expected an nn.Module or a state dict, got {type(model_or_state).__name__}")


#: ``"float32"`` → ``torch.float32`` …, for reading the dtypes a saved state names.
_DTYPES = {name: value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}


class WeightEMA:
    """Moving averages of a model's weights for several decays at once.

    Args:
        decays: the decays β, each in (0, 1) (profile keys ``baselines.ema_decays`` /
            ``baselines.ema_biased_decays``).
        mode: ``"debiased"`` (μ_0 = 0, divided by 1 − β^T; Fig. 11) or ``"biased"`` (μ_0 = θ_zero-shot; Fig. 12).
        init_state: the zero-shot state dict; required for ``"biased"``, ignored otherwise.
        device: where the buffers live; default: the device of the first tensors seen. ``"cpu"`` saves
            accelerator memory (one model copy per decay) at the cost of a host copy every step.

    Raises:
        WiseftError: for a decay outside (0, 1), duplicate decays, or ``"biased"`` without ``init_state``.
    """

    def __init__(self, decays: Iterable[float], *, mode: Mode = "debiased",
                 init_state: Mapping[str, torch.Tensor] | None = None, device: str | torch.device | None = None):
        self.decays = [float(d) for d in decays]
        if not self.decays:
            raise WiseftError("WeightEMA: give at least one decay")
        for d in self.decays:
            if not (0.0 < d < 1.0 and math.isfinite(d)):
                raise WiseftError(f"WeightEMA: decay {d!r} must lie in (0, 1), e.g. 0.999")
        if len(set(self.decays)) != len(self.decays):
            raise WiseftError(f"WeightEMA: duplicate decays in {self.decays}")
        if mode not in ("debiased", "biased"):
            raise WiseftError(f"WeightEMA: unknown mode {mode!r}; expected 'debiased' or 'biased'")
        self.mode: Mode = mode
        self.device = torch.device(device) if device is not None else None
        self.num_updates = 0
        self._avg: list[dict[str, torch.Tensor]] = []  # one {name: float32 tensor} per decay
        self._latest: dict[str, torch.Tensor] = {}  # non-floating entries, copied from the latest state
        self._dtypes: dict[str, torch.dtype] = {}  # original dtypes, to hand averages back in the model's dtype
        if mode == "biased":
            if init_state is None:
                raise WiseftError("WeightEMA(mode='biased') needs init_state: the zero-shot state dict to start from")
            self._allocate(init_state, copy_values=True)

    # ------------------------------------------------------------------------------------------ buffers
    def _allocate(self, state: Mapping[str, torch.Tensor], *, copy_values: bool) -> None:
        """Create the buffers from ``state`` (its values for the biased start, zeros otherwise)."""
        self._avg = [{} for _ in self.decays]
        for name, t in state.items():
            t = t.detach()
            device = self.device or t.device
            self._dtypes[name] = t.dtype
            if t.is_floating_point():
                for avg in self._avg:
                    avg[name] = t.to(device, torch.float32, copy=True) if copy_values else \
                        torch.zeros(t.shape, dtype=torch.float32, device=device)
            else:
                self._latest[name] = t.to(device, copy=True)

    def _check_keys(self, state: Mapping[str, torch.Tensor]) -> None:
        known = set(self._dtypes)
        if set(state) != known:
            missing, extra = sorted(known - set(state)), sorted(set(state) - known)
            raise IncompatibleStateError(
                f"WeightEMA.update: the state's keys differ from the averaged ones (missing {missing[:5]}, "
                f"unexpected {extra[:5]}); average the same model that init_state / the first update came from")
        for name, t in state.items():
            ref = self._avg[0].get(name, self._latest.get(name))
            if tuple(t.shape) != tuple(ref.shape) or t.is_floating_point() != (name in self._avg[0]):
                raise IncompatibleStateError(
                    f"WeightEMA.update: '{name}' has shape {tuple(t.shape)} / dtype {t.dtype}, "
                    f"but the average holds {tuple(ref.shape)} / {self._dtypes[name]}")

    # ------------------------------------------------------------------------------------------- update
    @torch.no_grad()
    def update(self, model_or_state: torch.nn.Module | Mapping[str, torch.Tensor]) -> None:
        """Fold the current weights into every average; call once per optimizer step.

        Args:
            model_or_state: the model being fine-tuned, or its state dict (same keys every call).

        Raises:
            IncompatibleStateError: if keys, shapes or the float/integer kind change between calls.
        """
        state = _state_of(model_or_state)
        if not self._dtypes:
            self._allocate(state, copy_values=False)
        self._check_keys(state)
        self.num_updates += 1
        t = self.num_updates
        names = list(self._avg[0])
        for decay, avg in zip(self.decays, self._avg):
            if self.mode == "debiased":
                # w_t = (1 − β)/(1 − β^t); expm1 keeps 1 − β^t accurate when β is within 1e-6 of 1.
                weight = (1.0 - decay) / -math.expm1(t * math.log(decay))
            else:
                weight = 1.0 - decay
            bufs = [avg[n] for n in names]
            src = [state[n].detach().to(bufs[i].device, torch.float32) for i, n in enumerate(names)]
            if bufs:
                torch._foreach_lerp_(bufs, src, weight)
        for name, buf in self._latest.items():
            buf.copy_(state[name])

    # ------------------------------------------------------------------------------------------ results
    def _index(self, decay: float) -> int:
        for i, d in enumerate(self.decays):
            if math.isclose(d, decay, rel_tol=0.0, abs_tol=1e-12):
                return i
        raise WiseftError(f"WeightEMA: no average for decay {decay!r}; the averaged decays are {self.decays}")

    def state_dict_for(self, decay: float) -> dict[str, torch.Tensor]:
        """The averaged state dict for one decay, in the model's dtypes, ready for ``model.load_state_dict``.

        For the debiased mode this is already μ_T / (1 − β^T); for the biased mode it is μ_T.

        Raises:
            WiseftError: for a decay not in the grid, or a debiased average before any update (undefined).
        """
        i = self._index(decay)
        if self.mode == "debiased" and self.num_updates == 0:
            raise WiseftError("WeightEMA: the debiased average is undefined before the first update()")
        out = {}
        for name, dtype in self._dtypes.items():
            if name in self._avg[i]:
                out[name] = self._avg[i][name].to(dtype, copy=True)
            else:
                out[name] = self._latest[name].clone()
        return out

    # ------------------------------------------------------------------------------------ save / resume
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The resumable state as ``(tensors, metadata)``: what :meth:`save` writes, for embedding elsewhere.

        Tensor keys are ``avg.<i>.<name>`` for decay index i and ``latest.<name>`` for copied entries; the
        metadata (string values, as safetensors requires) holds the format, mode, decays, step and dtypes.
        """
        tensors = {f"avg.{i}.{name}": buf for i, avg in enumerate(self._avg) for name, buf in avg.items()}
        tensors.update({f"latest.{name}": buf for name, buf in self._latest.items()})
        tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
        meta = {
            "format": EMA_FORMAT,
            "mode": self.mode,
            "decays": json.dumps(self.decays),
            "num_updates": str(self.num_updates),
            "dtypes": json.dumps({n: str(d).removeprefix("torch.") for n, d in self._dtypes.items()}),
        }
        return tensors, meta

    def load_state_dict(self, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
        """Restore the state written by :meth:`state_dict`; the mode and decays must be the ones of ``self``.

        Raises:
            CheckpointError: for another format, another mode or decay grid, or missing tensors.
        """
        if metadata.get("format") != EMA_FORMAT:
            raise CheckpointError(f"EMA state: format {metadata.get('format')!r}, expected {EMA_FORMAT!r}")
        try:
            decays = json.loads(metadata["decays"])
            names = json.loads(metadata["dtypes"])
            num_updates = int(metadata["num_updates"])
            mode = metadata["mode"]
            dtypes = {}
            for n, d in names.items():
                # Looked up among torch's dtypes only: the file never picks an arbitrary attribute of torch.
                if d not in _DTYPES:
                    raise ValueError(f"tensor {n!r} has dtype {d!r}, which is not a torch dtype")
                dtypes[n] = _DTYPES[d]
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            raise CheckpointError(f"EMA state: damaged metadata ({type(e).__name__}: {e}); delete the file to "
                                  f"start the averages over") from e
        if mode != self.mode or decays != self.decays:
            raise CheckpointError(
                f"EMA state was saved for mode {mode!r} and decays {decays}, but this run averages "
                f"mode {self.mode!r} and decays {self.decays}; resume with the same profile or start a new run")
        avg: list[dict[str, torch.Tensor]] = [{} for _ in self.decays]
        latest: dict[str, torch.Tensor] = {}
        try:
            for name in dtypes:
                if f"latest.{name}" in tensors:
                    latest[name] = tensors[f"latest.{name}"].clone()
                else:
                    for i in range(len(self.decays)):
                        avg[i][name] = tensors[f"avg.{i}.{name}"].to(torch.float32, copy=True)
        except KeyError as e:
            raise CheckpointError(f"EMA state is missing the tensor {e.args[0]!r}; the file is incomplete") from e
        if self.device is not None:
            avg = [{n: t.to(self.device) for n, t in a.items()} for a in avg]
            latest = {n: t.to(self.device) for n, t in latest.items()}
        self._avg, self._latest, self._dtypes = avg, latest, dtypes
        self.num_updates = num_updates

    def save(self, path: str | os.PathLike) -> None:
        """Write the state atomically as one safetensors file (header metadata, no pickle)."""
        tensors, meta = self.state_dict()
        with atomic_path(path) as tmp:
            save_file({k: v.cpu() for k, v in tensors.items()}, str(tmp), metadata=meta)
        log.debug("saved EMA state (%d updates, decays %s) to %s", self.num_updates, self.decays, path)

    def load(self, path: str | os.PathLike) -> None:
        """Resume from a file written by :meth:`save` (see :meth:`load_state_dict` for the checks)."""
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
            tensors = load_file(str(path))
        except (OSError, SafetensorError) as e:
            raise CheckpointError(f"cannot read the EMA state {path}: {e}") from e
        self.load_state_dict(tensors, meta)
