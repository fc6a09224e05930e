"""How the one-pass evaluation holds a chunk of decoded images: its form, its size and its place.

- **Form.** When a set's transform is open_clip's evaluation transform (resize, crop, ``ToTensor``,
  ``Normalize``), images are decoded and cropped into ``uint8`` tensors (a quarter of the float bytes) and
  normalised on the device just before each forward pass, with the same arithmetic as ``ToTensor`` + ``Normalize``
  (so the logits are bit for bit those of the float path). Other transforms keep their float output.
- **Size.** ``memory_gb`` bounds the chunk's bytes: :func:`chunk_images_for` turns it into whole batches, whatever
  the dataset's length or image size.
- **Place.** On CUDA the chunk lives on the device when it fits in free memory (after a reserve for the model's
  activations), else in pinned host memory, moved batch by batch (:func:`placement`, a pure function of sizes).
- **GPU JPEG decoding** (``decode="device"``): file lists are read as bytes by the loader workers and decoded by
  ``torchvision.io.decode_jpeg`` on the evaluation device, then resized and cropped there (bicubic, antialiased:
  close to, not bit for bit, PIL's resampling).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch

from .errors import DatasetError, WiseftError

log = logging.getLogger(__name__)

__all__ = ["chunk_images_for", "placement", "Feeder", "prepare", "staged_chunks", "DECODE_MODES"]

DECODE_MODES = ("cpu", "device")
#: free device memory kept for weights' copies and activations when deciding whether a chunk fits on the device
DEVICE_RESERVE_BYTES = 4 * 2**30


def chunk_images_for(memory_gb: float | None, image_bytes: int, batch_size: int, cap: int | None = None) -> int:
    """Images per chunk: as many whole batches as fit in ``memory_gb`` (at least one), and at most ``cap``
    images (rounded up to whole batches) when given."""
    if image_bytes <= 0 or batch_size <= 0:
        raise WiseftError(f"chunk sizing needs positive sizes, got image_bytes={image_bytes}, batch_size={batch_size}")
    batches = math.inf if memory_gb is None else max(1, int(memory_gb * 2**30) // (image_bytes * batch_size))
    if cap is not None:
        batches = min(batches, max(1, math.ceil(cap / batch_size)))
    if batches == math.inf:
        raise WiseftError("chunk sizing needs eval.memory_gb or eval.chunk_images")
    return int(batches) * batch_size


def placement(chunk_bytes: int, device_type: str, free_device_bytes: int | None = None,
              reserve_bytes: int = DEVICE_RESERVE_BYTES) -> str:
    """Where a chunk of ``chunk_bytes`` lives: ``"device"`` (CUDA, fits in free memory after the reserve),
    ``"pinned"`` (CUDA, does not fit: page-locked host memory, copied per batch) or ``"host"`` (no CUDA)."""
    if device_type != "cuda":
        return "host"
    if free_device_bytes is not None and chunk_bytes + reserve_bytes <= free_device_bytes:
        return "device"
    return "pinned"


def free_device_bytes(dev: torch.device) -> int | None:
    """Free memory of a CUDA device (``None`` elsewhere)."""
    if dev.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(dev)
    return int(free)


@dataclass
class Feeder:
    """Turns a chunk's staged batch into the model's input on the device.

    Attributes:
        dev: the evaluation device.
        mean, std: ``[1, C, 1, 1]`` tensors on ``dev`` when batches are ``uint8`` (normalised here), else ``None``.
        on_device: whether whole chunks are moved to ``dev`` when read (else each batch is moved per forward).
        channels_last: hand the model ``channels_last`` tensors (faster convolutions on GPUs).
        decode: for ``decode="device"``: turns a batch of JPEG byte tensors into ``uint8`` images on ``dev``.
    """

    dev: torch.device
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    on_device: bool = True
    channels_last: bool = False
    decode: Callable[[list[torch.Tensor]], torch.Tensor] | None = None

    #: bytes of one staged image when known before the first batch (device decoding), else read from it
    image_bytes: int | None = None

    def stage(self, batch: Any) -> Any:
        """What a chunk holds of one loader batch (decoded on the device first when asked)."""
        if self.decode is not None:
            x = self.decode(batch)
            return x if self.on_device or x.device.type == "cpu" else x.cpu().pin_memory()
        return batch.to(self.dev, non_blocking=True) if self.on_device else batch

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dev, non_blocking=True)
        if self.mean is not None:
            # ToTensor's float(x) / 255, then Normalize's (x − mean) / std: the same operations, batched
            x = x.to(torch.get_default_dtype()).div_(255).sub_(self.mean).div_(self.std)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


#: ``ToTensor`` and open_clip's ``MaybeToTensor`` (the same conversion of a PIL image)
_TO_TENSOR = ("ToTensor", "MaybeToTensor")


def _split(transform: Any) -> tuple[Any, Any] | None:
    """``(uint8 transform, Normalize)`` when ``transform`` is a Compose ending in ToTensor + Normalize."""
    from torchvision import transforms as T

    steps = getattr(transform, "transforms", None)
    if not isinstance(transform, T.Compose) or not steps or len(steps) < 2:
        return None
    *head, to_tensor, normalize = steps
    if not (type(to_tensor).__name__ in _TO_TENSOR and isinstance(to_tensor, T.ToTensor)
            and type(normalize) is T.Normalize):
        return None
    return T.Compose([*head, T.PILToTensor()]), normalize


def _crop_size(transform: Any) -> int | None:
    """The square crop of an open_clip evaluation transform (``None`` when it is not that shape)."""
    from torchvision import transforms as T

    steps = getattr(transform, "transforms", [])
    crops = [s for s in steps if isinstance(s, T.CenterCrop)]
    sizes = {tuple(c.size) for c in crops}
    if len(crops) != 1 or not all(isinstance(s, (T.Resize, T.CenterCrop, T.ToTensor, T.Normalize))
                                  or type(s).__name__ == "MaybeConvertMode" for s in steps):
        return None
    (size,) = sizes
    return size[0] if size[0] == size[1] else None


class _FileBytes(torch.utils.data.Dataset):
    """``(raw file bytes, label)`` of a :class:`~wiseft.datasets.images.FileListDataset`.

    Plain ``bytes`` cross from loader workers by pickling; a tensor per file would need one shared-memory file
    descriptor each.
    """

    def __init__(self, files: list[str], labels) -> None:
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        try:
            with open(self.files[i], "rb") as fh:
                return fh.read(), int(self.labels[i])
        except OSError as e:
            raise DatasetError(f"cannot read image {self.files[i]!r}: {e}") from e


def _collate_bytes(batch):
    return [b[0] for b in batch], torch.tensor([b[1] for b in batch])


def _as_tensors(data: list[bytes]) -> list[torch.Tensor]:
    return [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in data]


def decode_on_device(data: list[torch.Tensor], size: int, dev: torch.device) -> torch.Tensor:
    """Decode JPEG bytes on ``dev`` (nvjpeg on CUDA), resize the shorter side to ``size`` (bicubic, antialiased)
    and centre-crop: a ``uint8`` ``[N, 3, size, size]`` batch."""
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.transforms.v2 import functional as TF

    images = decode_jpeg(data, mode=ImageReadMode.RGB, device=dev)
    out = []
    for img in images:
        img = TF.resize(img, [size], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        out.append(TF.center_crop(img, [size, size]))
    return torch.stack(out)


def prepare(dataset: torch.utils.data.Dataset, dev: torch.device, *, decode: str = "cpu",
            channels_last: bool = False) -> tuple[torch.utils.data.Dataset, Feeder, Callable | None]:
    """The dataset the loader reads (a ``uint8`` view where possible), its :class:`Feeder` (placement still to be
    decided) and the loader's collate function (``None``: the default).

    ``dataset`` may be a :class:`torch.utils.data.Subset` of a dataset with a ``transform`` attribute; the view is
    a shallow copy with the transform swapped, so the original is untouched.
    """
    if decode not in DECODE_MODES:
        raise WiseftError(f"eval.decode is {decode!r}; choose one of {', '.join(DECODE_MODES)}")
    base, indices = dataset, None
    if isinstance(dataset, torch.utils.data.Subset):
        base, indices = dataset.dataset, dataset.indices
    split = _split(getattr(base, "transform", None))
    if split is None:
        if decode == "device":
            log.warning("eval.decode=device needs open_clip's evaluation transform; this set decodes on the CPU")
        return dataset, Feeder(dev, channels_last=channels_last), None
    uint8_transform, normalize = split
    mean = torch.as_tensor(normalize.mean, dtype=torch.get_default_dtype(), device=dev).view(1, -1, 1, 1)
    std = torch.as_tensor(normalize.std, dtype=torch.get_default_dtype(), device=dev).view(1, -1, 1, 1)
    feeder = Feeder(dev, mean, std, channels_last=channels_last)
    size = _crop_size(base.transform)
    files = getattr(base, "files", None)
    jpegs = files is not None and all(str(f).lower().endswith((".jpg", ".jpeg")) for f in files)
    if decode == "device" and jpegs and size is not None and getattr(base, "pre", None) is None:
        view = _FileBytes(files, base.labels)
        feeder.decode = lambda batch: decode_on_device(_as_tensors(batch), size, dev)
        feeder.image_bytes = 3 * size * size
        return (view if indices is None else torch.utils.data.Subset(view, indices)), feeder, _collate_bytes
    if decode == "device":
        log.warning("eval.decode=device needs a plain list of JPEG files with open_clip's evaluation transform; "
                    "this set decodes on the CPU")
    view = copy.copy(base)
    view.transform = uint8_transform
    return (view if indices is None else torch.utils.data.Subset(view, indices)), feeder, None


def staged_chunks(loader: Iterable, feeder: Feeder, batch_size: int, memory_gb: float | None,
                  cap: int | None) -> Iterator[list[tuple[Any, Any]]]:
    """The loader's batches grouped into chunks of ``(staged images, labels)``.

    The chunk size (:func:`chunk_images_for`) and its place (:func:`placement`) are decided from the first batch,
    whose images give the bytes per image; the feeder learns the place.
    """
    batches = iter(loader)
    first = next(batches, None)
    if first is None:
        return
    per_image = feeder.image_bytes or first[0][0].numel() * first[0].element_size()
    n = chunk_images_for(memory_gb, per_image, batch_size, cap)
    where = placement(n * per_image, feeder.dev.type, free_device_bytes(feeder.dev))
    feeder.on_device = where == "device"
    log.info("evaluation chunks: %d images × %d bytes (%s) in %s memory", n, per_image,
             "uint8" if feeder.mean is not None else str(first[0].dtype).replace("torch.", ""), where)
    per_chunk = n // batch_size
    buffer = [(feeder.stage(first[0]), first[1])]
    del first  # from here on only the chunk holds its batches, so a consumed chunk is freed before the next is read
    while True:
        if len(buffer) == per_chunk:
            yield buffer
            buffer = []
        batch = next(batches, None)
        if batch is None:
            break
        buffer.append((feeder.stage(batch[0]), batch[1]))
        del batch
    if buffer:
        yield buffer
