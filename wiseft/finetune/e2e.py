"""End-to-end fine-tuning as in the paper (App. D.2), resumable and distributed.

AdamW over every parameter, a warm-up + cosine schedule set before each optimizer step, gradient clipping at a
global norm, cross-entropy with optional label smoothing. A global batch is ``micro batch × processes ×
accumulation steps``; see :mod:`wiseft.finetune.sampler` for the data order and
:mod:`wiseft.finetune.state` for what a checkpoint holds.

Hooks (used by the baselines, :mod:`wiseft.steps.baselines`): ``extra_loss(model)`` adds a term such as L2-SP's
λ‖θ − θ_zero-shot‖² to every global batch's loss before backward; ``loss_fn(logits, labels, images)`` replaces the
cross-entropy (e.g. distillation); ``on_step(model, step)`` runs after every optimizer step (e.g. a weight EMA);
``callback_state`` names objects whose state is saved in every checkpoint (as safetensors, no pickle) and
restored on resume, so a killed and resumed run ends with bitwise identical callback state too.

Example:
    >>> from wiseft.finetune import E2ECfg
    >>> result = finetune_e2e(classifier, train_set, E2ECfg(epochs=2, batch_size=64), "runs/x/train_e2e",
    ...                       device="cpu", seed=0)
    >>> result.model   # the fine-tuned classifier (the same object, trained in place)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch
import torch.nn.functional as F

from ..device import autocast, resolve_device, seed_everything
from ..errors import CheckpointError, NumericsError
from ..progress import progress as progress_bar
from . import distributed as D
from .config import E2ECfg
from .augment import SeededDataset
from .optim import build_optimizer, loader_options
from .sampler import BatchPlan, MicroBatchSampler, derive_seed
from .schedule import WarmupCosine
from .state import (TrainProgress, capture_rng, check_extra_name, latest_state, list_states, load_latest,
                    save_train_state)

log = logging.getLogger(__name__)

__all__ = ["finetune_e2e", "E2EResult", "build_optimizer", "STATE_SUBDIR", "Stateful"]

#: checkpoints live in ``<out_dir>/state/step-*``; TensorBoard logs in ``<out_dir>/tensorboard``.
STATE_SUBDIR = "state"
_DROPOUT_STREAM, _LOADER_STREAM = 0xD409, 0x10AD
# E2ECfg keys that may change between a run and its resumption: they do not change what is computed.
_RESUME_FREE = {"enabled", "log_every_steps", "tensorboard", "num_workers", "checkpoint_every_steps",
                "eval_every_epoch", "micro_batch_size", "grad_checkpointing", "pin_memory", "prefetch_factor",
                "fused_optimizer", "channels_last"}

EvalFn = Callable[[torch.nn.Module, int], dict[str, Any]]
ExtraLoss = Callable[[torch.nn.Module], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
OnStep = Callable[[torch.nn.Module, int], Any]


class Stateful(Protocol):
    """A training callback with resumable state (e.g. :class:`wiseft.baselines.WeightEMA`)."""

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]: ...

    def load_state_dict(self, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None: ...


@dataclass
class E2EResult:
    """What :func:`finetune_e2e` returns.

    Attributes:
        model: the trained model (the module passed in, unwrapped from DDP).
        global_step: optimizer steps taken in total.
        history: one record per epoch: mean loss, last learning rate, evaluation results.
        state_dir: the folder of the last training checkpoint.
        resumed_from: the checkpoint a resumed run started from, if any.
    """

    model: torch.nn.Module
    global_step: int
    history: list[dict[str, Any]]
    state_dir: Path | None
    resumed_from: Path | None = None


def _settings(cfg: E2ECfg, seed: int, num_samples: int, tag: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"cfg": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RESUME_FREE},
           "seed": seed, "num_samples": num_samples}
    if tag is not None:  # JSON round trip, so that it compares equal to the copy read back from trainer.json
        out["tag"] = json.loads(json.dumps(tag))
    return out


def _check_resumable(saved: dict[str, Any], now: dict[str, Any], path: Path) -> None:
    diffs = [f"{k}: {saved['cfg'].get(k)!r} → {v!r}" for k, v in now["cfg"].items() if saved["cfg"].get(k) != v]
    diffs += [f"{k}: {saved.get(k)!r} → {now.get(k)!r}" for k in ("seed", "num_samples", "tag")
              if saved.get(k) != now.get(k)]
    if diffs:
        raise CheckpointError(f"cannot resume from {path}: the run's settings changed ({'; '.join(diffs)}); "
                              f"resume with the original settings, or start over with resume=False")


def finetune_e2e(model: torch.nn.Module, train_set: torch.utils.data.Dataset, cfg: E2ECfg,
                 out_dir: str | os.PathLike, *, device: str | torch.device = "cpu", seed: int = 0,
                 resume: bool = False, eval_fn: EvalFn | None = None, keep_last: int = 2,
                 collate_fn: Callable | None = None, ddp_kwargs: dict[str, Any] | None = None,
                 extra_loss: ExtraLoss | None = None, loss_fn: LossFn | None = None, on_step: OnStep | None = None,
                 callback_state: Mapping[str, Stateful] | None = None,
                 tag: dict[str, Any] | None = None) -> E2EResult:
    """Fine-tune every parameter of ``model`` on ``train_set`` with the paper's recipe.

    Under torchrun, call :func:`wiseft.finetune.distributed.init_distributed` first and pass its device; each
    process then trains on its share of every global batch and rank 0 writes.

    Args:
        model: maps an image batch to logits (e.g. ``wiseft.models.ImageClassifier``); trained in place.
        train_set: ``ds[i] -> (image_tensor, label)`` with the training transform applied; its random draws are
            seeded per ``(seed, epoch, i)``.
        cfg: the ``finetune.e2e`` section of a profile.
        out_dir: the training folder: checkpoints under ``state/``, TensorBoard logs under ``tensorboard/``.
        device: where to train.
        seed: seeds data order, augmentation and dropout.
        resume: continue from the newest complete checkpoint in ``out_dir`` (a finished run returns at once).
            Without it, earlier checkpoints in ``out_dir`` are removed and training starts over.
        eval_fn: ``eval_fn(model, epoch) -> {metric: value}``, called on every process after each epoch when
            ``cfg.eval_every_epoch`` (the model is in eval mode; shard and reduce inside it when distributed).
        keep_last: complete checkpoints kept on disk.
        collate_fn: passed to the DataLoader.
        ddp_kwargs: passed to ``DistributedDataParallel``.
        extra_loss: ``extra_loss(model) -> scalar tensor`` on the unwrapped model, added once per global batch to
            the loss before backward (on the last micro-batch; under DDP each process adds it and the gradients'
            average is its gradient). The reported loss includes it.
        loss_fn: ``loss_fn(logits, labels, images) -> scalar`` (the mean over the micro-batch) in place of the
            cross-entropy; ``cfg.label_smoothing`` is then ignored. Logits arrive in float32.
        on_step: ``on_step(model, step)`` after every optimizer step, on every process, under ``no_grad``, with
            the unwrapped model and the number of optimizer steps taken so far (1 after the first).
        callback_state: ``{name: object}`` with ``state_dict() -> (tensors, str metadata)`` and
            ``load_state_dict(tensors, metadata)``; saved in every checkpoint as ``extra.<name>.safetensors``
            and restored on resume (names: letters, digits, ``_``, ``-``).
        tag: a JSON-able description of the hooks (``{"l2sp": 0.01}``); part of the run's settings, so resuming
            with other hooks is refused like resuming with another learning rate.

    Returns:
        An :class:`E2EResult`.

    Raises:
        NumericsError: the loss became NaN or inf; the message names the step, and the checkpoints written before
            it stay untouched.
        CheckpointError: ``resume`` with a checkpoint written under different settings, or a damaged one.
    """
    run = _Run(model, train_set, cfg, Path(out_dir), resolve_device(device), seed, keep_last, collate_fn,
               _Hooks(extra_loss, loss_fn, on_step, dict(callback_state or {})), tag)
    if resume:
        run.resume()
    else:
        run.clear_old_states()
    D.barrier()
    if not run.progress.done:
        run.train(eval_fn, ddp_kwargs or {})
    return E2EResult(model, run.progress.global_step, run.progress.history, latest_state(run.state_root),
                     run.resumed_from)


@dataclass
class _Hooks:
    extra_loss: ExtraLoss | None = None
    loss_fn: LossFn | None = None
    on_step: OnStep | None = None
    state: dict[str, Stateful] = dataclasses.field(default_factory=dict)


class _Run:
    """The state of one fine-tuning run: the model, its optimizer and schedule, the data plan and progress."""

    def __init__(self, model, train_set, cfg: E2ECfg, out_dir: Path, dev: torch.device, seed: int,
                 keep_last: int, collate_fn, hooks: _Hooks | None = None, tag: dict[str, Any] | None = None):
        self.model, self.train_set, self.cfg, self.out_dir, self.dev = model, train_set, cfg, out_dir, dev
        self.seed, self.keep_last, self.collate_fn = seed, keep_last, collate_fn
        self.hooks = hooks or _Hooks()
        for name in self.hooks.state:
            check_extra_name(name)
        self.rank, self.world = D.get_rank(), D.get_world_size()
        self.main = self.rank == 0
        self.state_root = out_dir / STATE_SUBDIR
        self.micro = cfg.micro_batch_size or cfg.batch_size // self.world
        self.plan = BatchPlan(len(train_set), cfg.batch_size, self.micro, self.world, self.rank, seed)
        self.total_steps = self.plan.steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.settings = _settings(cfg, seed, len(train_set), tag)

        model.to(dev)
        if cfg.grad_checkpointing:
            if hasattr(model, "set_grad_checkpointing"):
                model.set_grad_checkpointing(True)
            else:
                log.warning("grad_checkpointing asked for, but %s has no set_grad_checkpointing(); ignored",
                            type(model).__name__)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], cfg, dev.type)
        self.scheduler = WarmupCosine(self.optimizer, cfg.lr, cfg.warmup_steps, self.total_steps)
        self.scaler = torch.amp.GradScaler(dev.type, enabled=cfg.precision == "amp_fp16")
        seed_everything(derive_seed(_DROPOUT_STREAM, seed, self.rank))
        self.progress, self.resumed_from = TrainProgress(), None
        self.ddp_model, self.writer = model, None

    # --------------------------------------------------------------------------------------- checkpoints
    def resume(self) -> None:
        """Load the newest complete checkpoint, if there is one."""
        loaded = load_latest(self.state_root)
        if loaded is None:
            log.info("no complete checkpoint in %s; starting from the beginning", self.state_root)
            return
        _check_resumable(loaded.trainer["settings"], self.settings, loaded.path)
        same_world = loaded.trainer.get("world_size") == self.world
        if not same_world:
            log.warning("checkpoint written by %s processes, resuming with %d: the data order is unchanged but "
                        "dropout draws will differ", loaded.trainer.get("world_size"), self.world)
        loaded.apply(self.model, self.optimizer, rank=self.rank, restore_random=same_world)
        self.scheduler.load_state_dict(loaded.trainer["scheduler"])
        if loaded.trainer.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(loaded.trainer["scaler"])
        for name, obj in self.hooks.state.items():
            if name not in loaded.extra:
                raise CheckpointError(f"{loaded.path} holds no state for the callback {name!r} (it was written by "
                                      f"a run without it); start over with resume=False")
            obj.load_state_dict(*loaded.extra[name])
        ignored = sorted(set(loaded.extra) - set(self.hooks.state))
        if ignored:
            log.warning("%s holds callback state %s that this run does not use; ignored", loaded.path, ignored)
        self.progress, self.resumed_from = loaded.progress, loaded.path
        log.info("resuming from %s (epoch %d, step %d)", loaded.path, self.progress.epoch,
                 self.progress.global_step)

    def clear_old_states(self) -> None:
        old = list_states(self.state_root) if self.main else []
        if old:
            log.warning("%s holds checkpoints of an earlier run; starting over (pass resume=True to continue)",
                        self.state_root)
        for path in old:
            shutil.rmtree(path)

    def checkpoint(self) -> None:
        """Write a checkpoint (every process contributes its random state; rank 0 writes)."""
        rng = D.all_gather_json(capture_rng())
        if self.main:
            trainer = {"scheduler": self.scheduler.state_dict(),
                       "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                       "settings": self.settings, "world_size": self.world, "micro_batch": self.micro,
                       "steps_per_epoch": self.plan.steps_per_epoch, "total_steps": self.total_steps}
            extra = {name: obj.state_dict() for name, obj in self.hooks.state.items()}
            save_train_state(self.state_root, model=self.model, optimizer=self.optimizer, progress=self.progress,
                             rng_states=rng, trainer=trainer, keep_last=self.keep_last, extra=extra)
        D.barrier()

    # ------------------------------------------------------------------------------------------ training
    def train(self, eval_fn: EvalFn | None, ddp_kwargs: dict[str, Any]) -> None:
        cfg, plan, progress = self.cfg, self.plan, self.progress
        self.ddp_model = D.wrap_ddp(self.model, self.dev, **ddp_kwargs)
        self.writer = _tensorboard(self.out_dir) if cfg.tensorboard and self.main else None
        log.info("fine-tuning: %d samples, global batch %d (%d × %d processes × %d accumulation), %d steps/epoch, "
                 "%d steps, %s on %s", plan.num_samples, cfg.batch_size, self.micro, self.world, plan.accum_steps,
                 plan.steps_per_epoch, self.total_steps, cfg.precision, self.dev)
        self.model.train()
        try:
            for epoch in range(progress.epoch, cfg.epochs):
                if progress.global_step >= self.total_steps:
                    break
                self.train_epoch(epoch)
                self.end_epoch(epoch, eval_fn)
        finally:
            if self.writer is not None:
                self.writer.close()

    def end_epoch(self, epoch: int, eval_fn: EvalFn | None) -> None:
        """Record the epoch, evaluate when asked, and checkpoint (marking the run done after its last step)."""
        progress, spe = self.progress, self.plan.steps_per_epoch
        finished = progress.step_in_epoch >= spe
        record = {"epoch": epoch + 1 if finished else epoch + progress.step_in_epoch / spe,
                  "global_step": progress.global_step,
                  "loss": progress.epoch_loss_sum / max(progress.epoch_loss_steps, 1),
                  "lr": self.scheduler.lr_at(max(progress.global_step - 1, 0))}
        if eval_fn is not None and self.cfg.eval_every_epoch:
            self.model.eval()
            with torch.no_grad():
                record["eval"] = eval_fn(self.model, epoch + 1)
            self.model.train()
            log.info("epoch %d evaluation: %s", epoch + 1, record["eval"])
        progress.history.append(record)
        if self.writer is not None:
            self.writer.add_scalar("train/epoch_loss", record["loss"], progress.global_step)
            for k, v in (record.get("eval") or {}).items():
                if isinstance(v, (int, float)):
                    self.writer.add_scalar(f"eval/{k}", v, progress.global_step)
        if finished:
            progress.epoch, progress.step_in_epoch = epoch + 1, 0
        progress.epoch_loss_sum, progress.epoch_loss_steps = 0.0, 0
        progress.done = progress.global_step >= self.total_steps
        self.checkpoint()

    def _loader(self, epoch: int, start: int) -> torch.utils.data.DataLoader:
        # A private generator: DataLoader draws its base seed from it instead of the global stream, so creating
        # a loader mid-epoch on resume leaves dropout's random stream where the checkpoint put it.
        gen = torch.Generator().manual_seed(derive_seed(_LOADER_STREAM, self.seed, epoch))
        return torch.utils.data.DataLoader(
            SeededDataset(self.train_set, self.seed), batch_sampler=MicroBatchSampler(self.plan, epoch, start),
            generator=gen, collate_fn=self.collate_fn, **loader_options(self.cfg, self.dev.type))

    def train_epoch(self, epoch: int) -> None:
        """Train from the current position to the end of ``epoch`` (or of the run)."""
        cfg, plan, progress = self.cfg, self.plan, self.progress
        start = progress.step_in_epoch
        batches = iter(self._loader(epoch, start))
        meter = _Throughput(progress.global_step)
        steps = range(start, plan.steps_per_epoch)
        if self.main:  # one bar, on rank 0
            steps = progress_bar(steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", total=plan.steps_per_epoch,
                                 initial=start)
        for step_in_epoch in steps:
            if progress.global_step >= self.total_steps:
                break
            lr = self.scheduler.apply(progress.global_step)
            loss = self.step(batches)
            if not math.isfinite(loss):
                self.optimizer.zero_grad(set_to_none=True)
                last = latest_state(self.state_root)
                raise NumericsError(
                    f"the training loss is {loss} at optimizer step {progress.global_step} (epoch {epoch + 1}, "
                    f"batch {step_in_epoch} of {plan.steps_per_epoch}, lr {lr:.3g}); the weights were not updated. "
                    f"Last good checkpoint: {last or 'none yet'}. Lower finetune.e2e.lr, use precision fp32, or "
                    f"look for broken images in this batch")
            self.optimizer_step()
            progress.global_step += 1
            if self.hooks.on_step is not None:
                with torch.no_grad():
                    self.hooks.on_step(self.model, progress.global_step)
            progress.step_in_epoch = step_in_epoch + 1
            progress.epoch_loss_sum += loss
            progress.epoch_loss_steps += 1
            self.log_step(epoch, loss, lr, meter)
            mid_epoch = progress.step_in_epoch < plan.steps_per_epoch and progress.global_step < self.total_steps
            if cfg.checkpoint_every_steps and progress.global_step % cfg.checkpoint_every_steps == 0 and mid_epoch:
                self.checkpoint()

    def step(self, batches) -> float:
        """Forward and backward over this process's micro-batches of one global batch; the mean loss over the
        global batch (the same number on every process)."""
        accum = self.plan.accum_steps
        loss_sum = torch.zeros((), device=self.dev)
        for j in range(accum):
            images, labels = next(batches)
            images = images.to(self.dev, non_blocking=True)
            if self.cfg.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = labels.to(self.dev, non_blocking=True)
            with D.maybe_no_sync(self.ddp_model, skip_sync=j < accum - 1):
                with autocast(self.cfg.precision, self.dev):
                    logits = self.ddp_model(images)
                # Mean over the micro-batch, divided by the accumulation steps; DDP averages over processes, so
                # the gradient is that of the mean loss over the whole global batch.
                if self.hooks.loss_fn is None:
                    loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.label_smoothing)
                else:
                    loss = self.hooks.loss_fn(logits.float(), labels, images)
                loss = loss / accum
                if self.hooks.extra_loss is not None and j == accum - 1:  # once per global batch
                    loss = loss + self.hooks.extra_loss(self.model)
                self.scaler.scale(loss).backward()
            loss_sum += loss.detach()
        return float(D.all_reduce_sum(loss_sum).item()) / self.world

    def optimizer_step(self) -> None:
        if self.cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)  # a plain optimizer.step() unless fp16 loss scaling is on
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def log_step(self, epoch: int, loss: float, lr: float, meter: "_Throughput") -> None:
        if not self.main:
            return
        step = self.progress.global_step
        ips = meter.rate(step, self.plan.global_batch)
        if step % self.cfg.log_every_steps == 0:
            log.info("step %d/%d  epoch %d  loss %.4f  lr %.3g  %.1f images/s", step, self.total_steps, epoch + 1,
                     loss, lr, ips)
            meter.reset(step)
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/images_per_s", ips, step)


class _Throughput:
    """Images per second since the last reset."""

    def __init__(self, step: int):
        self.reset(step)

    def reset(self, step: int) -> None:
        self.t0, self.step0 = time.perf_counter(), step

    def rate(self, step: int, per_step: int) -> float:
        return (step - self.step0) * per_step / max(time.perf_counter() - self.t0, 1e-9)


def _tensorboard(out_dir: Path):
    from torch.utils.tensorboard import SummaryWriter  # imported only when asked for: it is slow to import

    return SummaryWriter(log_dir=str(out_dir / "tensorboard"))
