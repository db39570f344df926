"""M1: the identity-disentangled AU detector (inference path and the encoders it shares).

The separation module has two image encoders of the same shape:

- the AU encoder ``E_A``: image -> ``C`` per-AU embeddings ``e_c`` ``(B, C, D)``; their sum over
  ``c`` is the AU embedding ``a`` ``(B, D)``;
- the identity encoder ``E_I``: image -> identity embedding ``z`` ``(B, D)``.

The detection path is ``E_A -> a -> F_au -> GCN -> sigmoid``: ``F_au`` (linear + ReLU) maps
``a`` to one feature vector per AU node ``(B, C, N)``, and a 2-layer graph convolution
``H1 = relu(A_hat X W1)``, ``logits = (A_hat H1 W2)[..., 0] + b`` mixes them over the AU graph.
``A_hat`` is a fixed buffer built from the co-occurrence statistics of the training labels
(:func:`cooccurrence_adjacency`) and travels with the weights and into the ONNX graph.

Layouts: images ``(B, 3, S, S)`` float, normalised as the run's manifest says (auperf's M1
runs use ``(pixel - 127.5) / 127.5``, RGB); logits ``(B, C)``. :class:`M1Inference` emits
``(B, 1, C)``: a view axis of length 1, so that ``fuse_views`` (mean over views, then sigmoid)
serves it unchanged.

Example::

    adj = cooccurrence_adjacency(train_labels)        # (C, C) float32
    net = M1Net(num_aus=12, adjacency=adj)
    out = net(images)                                 # out.logits (B, 12), out.a, out.z (B, 32)
    logits = M1Inference(net).eval()(images)          # (B, 1, 12)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ParameterError, ShapeError, ValueRangeError

__all__ = [
    "ConvEncoder",
    "M1Outputs",
    "M1Net",
    "M1Inference",
    "AUGraph",
    "cooccurrence_adjacency",
]


def cooccurrence_adjacency(labels: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """The normalised AU graph from label co-occurrence.

    Steps, on ``(N, C)`` labels in {0, 1} (-1 unknown, ignored pairwise):

    1. conditional probabilities ``P[i, j] = P(y_j = 1 | y_i = 1) = n_ij / n_i`` (``n_ij``:
       faces where both AUs are known and active, ``n_i``: faces where ``i`` is active and ``j``
       known; 0 where ``n_i = 0``);
    2. binarise: ``B[i, j] = 1`` iff ``P[i, j] >= threshold`` (``i != j``), then add self-loops
       ``B[i, i] = 1``;
    3. row-normalise: ``A_hat = D^-1 B`` with ``D = diag(sum_j B[i, j])``, so each node averages
       itself and the AUs that tend to co-occur with it.

    Args:
        labels: ``(N, C)`` integer labels.
        threshold: in ``[0, 1]``.

    Returns:
        ``(C, C)`` float32, rows sum to 1.

    Raises:
        ShapeError: ``labels`` is not 2-D with ``C >= 1``.
        ValueRangeError: a label outside {-1, 0, 1}, or ``threshold`` out of ``[0, 1]``.
    """
    y = np.asarray(labels)
    if y.ndim != 2 or y.shape[1] < 1:
        raise ShapeError(f"labels: expected shape (N, C) with C >= 1, got {y.shape}")
    bad = ~np.isin(y, (-1, 0, 1))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueRangeError(f"labels[{i}, {j}]: expected -1, 0 or 1, got {y[i, j]!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueRangeError(f"threshold: expected a value in [0, 1], got {threshold!r}")
    known = (y >= 0).astype(np.float64)
    pos = (y == 1).astype(np.float64)
    n_ij = pos.T @ pos  # both active
    n_i = pos.T @ known  # i active, j known
    p = np.divide(n_ij, n_i, out=np.zeros_like(n_ij), where=n_i > 0)
    b = (p >= float(threshold)).astype(np.float64)
    np.fill_diagonal(b, 1.0)
    return (b / b.sum(axis=1, keepdims=True)).astype(np.float32)


class ConvEncoder(nn.Module):
    """A small CNN: four 3x3 stride-2 conv + BN + ReLU stages, global average pooling, then a
    linear layer (its weight is the encoder's "last layer" in the orthogonality loss).

    Args:
        out_dim: output width.
        width: channels of the first stage (then 2x, 4x, 4x).
        in_ch: input channels.
    """

    def __init__(self, out_dim: int, width: int = 16, in_ch: int = 3) -> None:
        super().__init__()
        chans = [in_ch, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = chans[-1]
        self.head = nn.Linear(chans[-1], out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_ch, H, W) -> (B, out_dim)``."""
        return self.head(self.trunk(x))


class AUGraph(nn.Module):
    """The relation module: a 2-layer GCN over the ``C`` AU nodes with a fixed adjacency.

    ``H1 = relu(A_hat X W1)``, ``logits = (A_hat H1 W2)[..., 0] + b`` with ``X`` ``(B, C, N)``,
    ``W1`` ``(N, N)``, ``W2`` ``(N, 1)`` shared by the nodes and a per-AU bias ``b`` ``(C,)``.

    Args:
        adjacency: ``(C, C)`` normalised adjacency (:func:`cooccurrence_adjacency`).
        node_dim: ``N``.
    """

    def __init__(self, adjacency: Tensor | np.ndarray, node_dim: int) -> None:
        super().__init__()
        adj = torch.as_tensor(np.asarray(adjacency, np.float32))
        if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
            raise ShapeError(f"adjacency: expected shape (C, C), got {tuple(adj.shape)}")
        if not torch.isfinite(adj).all():
            raise ValueRangeError("adjacency: expected finite values")
        self.register_buffer("adjacency", adj.clone())
        self.w1 = nn.Linear(node_dim, node_dim, bias=False)
        self.w2 = nn.Linear(node_dim, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(adj.shape[0]))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, N)`` node features -> ``(B, C)`` logits."""
        h = torch.relu(torch.matmul(self.adjacency, self.w1(x)))
        return torch.matmul(self.adjacency, self.w2(h))[..., 0] + self.bias


class M1Outputs(NamedTuple):
    """What :meth:`M1Net.forward` returns.

    Attributes:
        logits: AU logits ``(B, C)``.
        e: per-AU embeddings ``(B, C, D)``.
        a: AU embedding ``sum_c e_c``, ``(B, D)``.
        z: identity embedding ``(B, D)`` (``None`` when not requested).
    """

    logits: Tensor
    e: Tensor
    a: Tensor
    z: Tensor | None


class M1Net(nn.Module):
    """The M1 separation module and detection path.

    Args:
        num_aus: ``C`` (>= 1).
        adjacency: ``(C, C)`` AU graph (:func:`cooccurrence_adjacency` of the training labels).
        embed_dim: ``D``, width of ``e_c``, ``a`` and ``z`` (equal so that ``cos(a, z)`` is
            defined for the orthogonality loss).
        node_dim: width ``N`` of the GCN node features.
        width: first-stage channels of both encoders.

    Attributes:
        au_encoder: trunk + linear to ``C * D`` (``E_A``); ``au_encoder.head.weight`` is ``W_A``.
        id_encoder: trunk + linear to ``D`` (``E_I``); ``id_encoder.head.weight`` is ``W_I``.
        detect: ``F_au``, linear ``D -> C * N`` + ReLU.
        graph: :class:`AUGraph`.
    """

    def __init__(
        self,
        num_aus: int,
        adjacency: Tensor | np.ndarray,
        embed_dim: int = 32,
        node_dim: int = 16,
        width: int = 16,
    ) -> None:
        super().__init__()
        for name, v in (("num_aus", num_aus), ("embed_dim", embed_dim), ("node_dim", node_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"{name}: expected a positive integer, got {v!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ParameterError(f"width: expected a positive integer, got {width!r}")
        adj = np.asarray(adjacency, np.float32)
        if adj.shape != (num_aus, num_aus):
            raise ShapeError(f"adjacency: expected shape ({num_aus}, {num_aus}), got {adj.shape}")
        self.num_aus, self.embed_dim, self.node_dim, self.width = (
            num_aus,
            embed_dim,
            node_dim,
            width,
        )
        self.au_encoder = ConvEncoder(num_aus * embed_dim, width)
        self.id_encoder = ConvEncoder(embed_dim, width)
        self.detect = nn.Sequential(nn.Linear(embed_dim, num_aus * node_dim), nn.ReLU())
        self.graph = AUGraph(adj, node_dim)

    def encode_au(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, H, W)`` -> per-AU embeddings ``e`` ``(B, C, D)`` and ``a = e.sum(1)``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ShapeError(f"x: expected shape (B, 3, H, W), got {tuple(x.shape)}")
        e = self.au_encoder(x).reshape(x.shape[0], self.num_aus, self.embed_dim)
        return e, e.sum(dim=1)

    def encode_id(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> identity embedding ``z`` ``(B, D)``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ShapeError(f"x: expected shape (B, 3, H, W), got {tuple(x.shape)}")
        return self.id_encoder(x)

    def classify(self, a: Tensor) -> Tensor:
        """AU embedding ``(B, D)`` -> logits ``(B, C)`` (``F_au`` then the GCN)."""
        nodes = self.detect(a).reshape(a.shape[0], self.num_aus, self.node_dim)
        return self.graph(nodes)

    def forward(self, x: Tensor, identity: bool = True) -> M1Outputs:
        """Run the AU path (and the identity encoder unless ``identity=False``)."""
        e, a = self.encode_au(x)
        z = self.encode_id(x) if identity else None
        return M1Outputs(self.classify(a), e, a, z)

    def config(self) -> dict[str, int]:
        """The constructor's integer arguments (to rebuild the network from a weights file)."""
        return {
            "num_aus": self.num_aus,
            "embed_dim": self.embed_dim,
            "node_dim": self.node_dim,
            "width": self.width,
        }


class M1Inference(nn.Module):
    """The exported graph: images ``(B, 3, S, S)`` -> logits ``(B, 1, C)`` (one view).

    Only ``E_A``, ``F_au`` and the GCN are evaluated; ``sigmoid(logits.mean(1))`` is the AU
    probability, as ``fuse_views`` computes it.

    Args:
        net: a trained :class:`M1Net` (shared, not copied).
    """

    def __init__(self, net: M1Net) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        """``(B, 3, H, W)`` float -> ``(B, 1, C)`` logits."""
        _, a = self.net.encode_au(image)
        return self.net.classify(a)[:, None, :]
