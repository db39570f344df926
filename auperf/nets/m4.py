"""M4: the Twin-Cycle Autoencoder (TCAE), self-supervised AU features from video.

Two frames of one video, a source ``I_s`` and a target ``I_t``, are encoded into an AU
embedding ``phi`` and a pose embedding ``psi`` each. The AU decoder ``D_A(phi_s, phi_t)``
returns the AU displacement field ``tau^A`` and a mask logit, the pose decoder
``D_P(psi_s, psi_t)`` the pose field ``tau^P`` and its mask logit. The two mask logits are
turned into per-pixel weights ``alpha^A + alpha^P = 1`` (a softmax over the pair), the
combined field is ``tau = alpha^A tau^A + alpha^P tau^P`` and ``tau(I_s)`` should reproduce
``I_t``. Both cycles (AU-changed and pose-changed) encode the warped source again and decode
the field back to ``I_s``. :class:`TCAENet` computes every tensor the losses of
``training.m4.losses`` need; :class:`M4Features` is the exported graph (image -> ``phi``,
``psi``).

Convention:
    Images given to :class:`TCAENet` are ``(B, 3, H, W)`` float in ``[0, 1]`` (RGB, pixel value
    / 255); the encoder sees ``2 * image - 1`` (in 8-bit units: ``(pixel - 127.5) / 127.5``,
    what the exported manifest records as mean and std). A displacement field is
    ``(B, 2, H, W)`` in pixels of the crop, channel 0 along x (right), channel 1 along y
    (down). Warping is backward: ``tau(I)[y, x] = I(y + dy[y, x], x + dx[y, x])``, sampled
    bilinearly, pixel centres at integer coordinates (origin at the centre of the top-left
    pixel), samples outside the image take the nearest border pixel. A decoder's first
    argument is the embedding of the frame that is warped, the second that of the frame the
    warp should reach: ``D_A(phi_s, phi_t)`` maps ``I_s`` towards ``I_t``.

Example::

    net = TCAENet(image_size=64)
    out = net(source, target)            # (B, 3, 64, 64) each, values in [0, 1]
    out.reconstruction, out.field_au, out.phi_s
    feats = M4Features(net.encoder).eval()(normalised)   # (phi, psi), each (B, 256)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ParameterError, ShapeError
from .backbones import build_backbone

__all__ = [
    "TCAEEncoder",
    "FieldDecoder",
    "TCAEOutputs",
    "TCAENet",
    "M4Features",
    "warp_by_field",
    "combine_fields",
]


def _check_pair(x: Tensor, name: str, size: int | None = None) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ShapeError(f"{name}: expected shape (B, 3, H, W), got {tuple(x.shape)}")
    if size is not None and tuple(x.shape[2:]) != (size, size):
        raise ShapeError(f"{name}: expected {size}x{size} images, got {tuple(x.shape[2:])}")


def warp_by_field(images: Tensor, field: Tensor) -> Tensor:
    """Backward-warp images by a displacement field (bilinear sampling, border padding).

    Convention: ``out[b, c, y, x] = images[b, c](y + field[b, 1, y, x], x + field[b, 0, y, x])``
    with pixel centres at integer coordinates; positions outside the image are clamped to the
    border (``padding_mode="border"``), the field is in pixels.

    Args:
        images: ``(B, C, H, W)`` float.
        field: ``(B, 2, H, W)`` float, ``(dx, dy)`` in pixels.

    Returns:
        ``(B, C, H, W)`` warped images.

    Raises:
        ShapeError: the shapes do not fit.
    """
    if images.dim() != 4:
        raise ShapeError(f"images: expected shape (B, C, H, W), got {tuple(images.shape)}")
    b, _, h, w = images.shape
    if tuple(field.shape) != (b, 2, h, w):
        raise ShapeError(f"field: expected shape {(b, 2, h, w)}, got {tuple(field.shape)}")
    ys = torch.arange(h, dtype=field.dtype, device=field.device)
    xs = torch.arange(w, dtype=field.dtype, device=field.device)
    gx = xs[None, None, :] + field[:, 0]  # (B, H, W)
    gy = ys[None, :, None] + field[:, 1]
    # align_corners=True: -1 and +1 are the centres of the first and last pixel.
    nx = gx * (2.0 / max(w - 1, 1)) - 1.0
    ny = gy * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([nx, ny], dim=-1)
    return F.grid_sample(
        images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=True
    )


def combine_fields(
    field_au: Tensor, field_pose: Tensor, mask_logit_au: Tensor, mask_logit_pose: Tensor
) -> tuple[Tensor, Tensor]:
    """``tau = alpha^A tau^A + alpha^P tau^P`` with ``(alpha^A, alpha^P) = softmax`` of the two
    mask logits per pixel (so ``alpha^A + alpha^P = 1``).

    Args:
        field_au, field_pose: ``(B, 2, H, W)`` fields in pixels.
        mask_logit_au, mask_logit_pose: ``(B, 1, H, W)`` mask logits.

    Returns:
        ``(tau, alpha_au)``: the combined field ``(B, 2, H, W)`` and ``alpha^A`` ``(B, 1, H, W)``.
    """
    alpha_au = torch.sigmoid(mask_logit_au - mask_logit_pose)  # softmax over two entries
    return alpha_au * field_au + (1.0 - alpha_au) * field_pose, alpha_au


class TCAEEncoder(nn.Module):
    """Image -> (AU embedding ``phi``, pose embedding ``psi``).

    A backbone of :mod:`auperf.nets.backbones` (pooled features ``(B, F)``) followed by two
    linear projections. The backbone's state dict is what M0 can start from
    (``backbone_init`` in its run file).

    Args:
        backbone: backbone name (default ``"smallnet"``).
        au_dim: size ``D`` of ``phi``.
        pose_dim: size ``D'`` of ``psi``.
    """

    def __init__(self, backbone: str = "smallnet", au_dim: int = 256, pose_dim: int = 256) -> None:
        super().__init__()
        if au_dim < 1 or pose_dim < 1:
            raise ParameterError(f"au_dim, pose_dim: expected >= 1, got {au_dim}, {pose_dim}")
        self.backbone_name = backbone
        self.backbone = build_backbone(backbone)
        feat = int(self.backbone.feature_dim)
        self.au_proj = nn.Linear(feat, au_dim)
        self.pose_proj = nn.Linear(feat, pose_dim)
        self.au_dim = au_dim
        self.pose_dim = pose_dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, H, W)`` normalised images (``2 * image - 1``) -> ``phi (B, D)``,
        ``psi (B, D')``."""
        f = self.backbone(x)
        return self.au_proj(f), self.pose_proj(f)


class FieldDecoder(nn.Module):
    """Two embeddings -> displacement field ``(B, 2, S, S)`` in pixels and a mask logit
    ``(B, 1, S, S)``.

    A network ``g``: a linear layer to a ``(C, S/16, S/16)`` map, four stages of
    nearest-neighbour upsampling x2 + 3x3 convolution + ReLU, and a 3x3 convolution to three
    channels ``(o_x, o_y, m)``. With ``antisymmetric=True`` (default) the field is
    ``max_displacement * tanh((o(s, t) - o(t, s)) / 2)`` and the mask logit
    ``(m(s, t) + m(t, s)) / 2``, so ``D(s, t) = -D(t, s)`` and ``D(s, s) = 0`` exactly: two
    equal embeddings give the identity warp, the field can only come from a difference between
    the embeddings, and the way back ``D(phi_s^A, phi_s)`` is the negated forward field when
    ``phi_s^A`` reaches ``phi_t``. With ``antisymmetric=False`` the field is
    ``max_displacement * tanh(o(s, t))`` and the mask logit ``m(s, t)``.

    Args:
        embedding_dim: size of each of the two embeddings (the input is their concatenation).
        image_size: ``S``, a multiple of 16.
        channels: channels of the four stages.
        max_displacement: largest displacement in pixels.
        antisymmetric: (anti)symmetrise over the order of the two embeddings (above).
    """

    def __init__(
        self,
        embedding_dim: int,
        image_size: int = 64,
        channels: tuple[int, int, int, int] = (64, 48, 32, 16),
        max_displacement: float | None = None,
        antisymmetric: bool = True,
    ) -> None:
        super().__init__()
        self.antisymmetric = bool(antisymmetric)
        if image_size < 16 or image_size % 16:
            raise ParameterError(f"image_size: expected a multiple of 16, got {image_size}")
        self.start = image_size // 16
        self.image_size = image_size
        self.max_displacement = float(
            max_displacement if max_displacement is not None else image_size / 4
        )
        c0 = channels[0]
        self.fc = nn.Linear(2 * embedding_dim, c0 * self.start * self.start)
        stages = []
        in_ch = c0
        for c in channels:
            stages += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(in_ch, c, 3, padding=1),
                nn.ReLU(inplace=True),
            ]
            in_ch = c
        self.stages = nn.Sequential(*stages)
        self.out = nn.Conv2d(in_ch, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # start from the identity warp, equal masks
        nn.init.zeros_(self.out.bias)
        self.c0 = c0

    def forward(self, source: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, E)``, ``(B, E)`` -> field ``(B, 2, S, S)`` in pixels, mask logit
        ``(B, 1, S, S)``."""
        if not self.antisymmetric:
            o = self._raw(source, target)
            return self.max_displacement * torch.tanh(o[:, :2]), o[:, 2:3]
        b = source.shape[0]
        o = self._raw(torch.cat([source, target]), torch.cat([target, source]))
        fwd, bwd = o[:b], o[b:]
        field = self.max_displacement * torch.tanh(0.5 * (fwd[:, :2] - bwd[:, :2]))
        return field, 0.5 * (fwd[:, 2:3] + bwd[:, 2:3])

    def _raw(self, source: Tensor, target: Tensor) -> Tensor:
        """The three output channels ``g(source, target)`` before the (anti)symmetrisation."""
        h = F.relu(self.fc(torch.cat([source, target], dim=1)))
        h = h.view(-1, self.c0, self.start, self.start)
        return self.out(self.stages(h))


class TCAEOutputs(NamedTuple):
    """Everything one TCAE step computes (see the module docstring for the notation).

    Embeddings are ``(B, D)`` (``phi``) and ``(B, D')`` (``psi``); fields ``(B, 2, S, S)`` in
    pixels; masks ``(B, 1, S, S)``; images ``(B, 3, S, S)`` in ``[0, 1]``.
    """

    phi_s: Tensor
    psi_s: Tensor
    phi_t: Tensor
    psi_t: Tensor
    field_au: Tensor  # tau^A, I_s -> I_A
    field_pose: Tensor  # tau^P, I_s -> I_P
    alpha_au: Tensor  # alpha^A (alpha^P = 1 - alpha^A)
    field: Tensor  # tau
    reconstruction: Tensor  # tau(I_s), should equal I_t
    au_changed: Tensor  # I_A = tau^A(I_s)
    pose_changed: Tensor  # I_P = tau^P(I_s)
    phi_a: Tensor  # phi_s^A: encoder of I_A
    psi_a: Tensor  # psi_s^A
    phi_p: Tensor  # phi_s^P: encoder of I_P
    psi_p: Tensor  # psi_s^P
    field_au_back: Tensor  # tau^{-A} = D_A(phi_s^A, phi_s), I_A -> I_s
    field_pose_back: Tensor  # tau^{-P} = D_P(psi_s^P, psi_s), I_P -> I_s
    cycle_au: Tensor  # tau^{-A}(tau^A(I_s))
    cycle_pose: Tensor  # tau^{-P}(tau^P(I_s))


class TCAENet(nn.Module):
    """The TCAE training network: encoder, AU decoder ``D_A``, pose decoder ``D_P``.

    Args:
        image_size: side ``S`` of the square crops (multiple of 16).
        backbone: encoder backbone name.
        au_dim, pose_dim: sizes of ``phi`` and ``psi``.
        decoder_channels: channels of the decoders' four stages.
        max_displacement: largest field value in pixels (default ``S / 4``).
        antisymmetric: antisymmetric field decoders (:class:`FieldDecoder`).
    """

    def __init__(
        self,
        image_size: int = 64,
        backbone: str = "smallnet",
        au_dim: int = 256,
        pose_dim: int = 256,
        decoder_channels: tuple[int, int, int, int] = (64, 48, 32, 16),
        max_displacement: float | None = None,
        antisymmetric: bool = True,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.encoder = TCAEEncoder(backbone, au_dim, pose_dim)
        args = (image_size, decoder_channels, max_displacement, antisymmetric)
        self.decoder_au = FieldDecoder(au_dim, *args)
        self.decoder_pose = FieldDecoder(pose_dim, *args)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, S, S)`` images in ``[0, 1]`` -> ``(phi, psi)``."""
        return self.encoder(images * 2.0 - 1.0)

    def forward(self, source: Tensor, target: Tensor) -> TCAEOutputs:
        """One TCAE pass over ``B`` pairs (both ``(B, 3, S, S)`` in ``[0, 1]``).

        Raises:
            ShapeError: images of the wrong shape or size.
        """
        _check_pair(source, "source", self.image_size)
        _check_pair(target, "target", self.image_size)
        if source.shape != target.shape:
            raise ShapeError(
                f"source, target: shapes differ, {tuple(source.shape)} vs {tuple(target.shape)}"
            )
        b = source.shape[0]
        phi, psi = self.encode(torch.cat([source, target]))
        phi_s, phi_t = phi[:b], phi[b:]
        psi_s, psi_t = psi[:b], psi[b:]
        field_au, logit_au = self.decoder_au(phi_s, phi_t)
        field_pose, logit_pose = self.decoder_pose(psi_s, psi_t)
        field, alpha_au = combine_fields(field_au, field_pose, logit_au, logit_pose)
        reconstruction = warp_by_field(source, field)
        # Both cycles: warp the source by one field alone, encode it, decode the way back.
        changed = warp_by_field(source.repeat(2, 1, 1, 1), torch.cat([field_au, field_pose]))
        au_changed, pose_changed = changed[:b], changed[b:]
        phi_c, psi_c = self.encode(changed)
        phi_a, phi_p = phi_c[:b], phi_c[b:]
        psi_a, psi_p = psi_c[:b], psi_c[b:]
        field_au_back, _ = self.decoder_au(phi_a, phi_s)
        field_pose_back, _ = self.decoder_pose(psi_p, psi_s)
        back = warp_by_field(changed, torch.cat([field_au_back, field_pose_back]))
        return TCAEOutputs(
            phi_s=phi_s,
            psi_s=psi_s,
            phi_t=phi_t,
            psi_t=psi_t,
            field_au=field_au,
            field_pose=field_pose,
            alpha_au=alpha_au,
            field=field,
            reconstruction=reconstruction,
            au_changed=au_changed,
            pose_changed=pose_changed,
            phi_a=phi_a,
            psi_a=psi_a,
            phi_p=phi_p,
            psi_p=psi_p,
            field_au_back=field_au_back,
            field_pose_back=field_pose_back,
            cycle_au=back[:b],
            cycle_pose=back[b:],
        )


class M4Features(nn.Module):
    """The exported feature extractor: normalised images -> ``(phi, psi)``.

    Input ``(B, 3, S, S)`` float32 ``(pixel - 127.5) / 127.5`` (RGB, NCHW); outputs
    ``au_embedding (B, D)`` and ``pose_embedding (B, D')``.
    """

    def __init__(self, encoder: TCAEEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(image)
