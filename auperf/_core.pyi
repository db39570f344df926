"""
auperf compiled core: batched face warping, view fusion, similarity estimation
"""
from __future__ import annotations
import collections.abc
import numpy
import typing
__all__: list[str] = ['build_info', 'cuda_device_count', 'fit_cpu', 'fit_cuda', 'fuse_cpu', 'fuse_cuda', 'get_num_threads', 'set_num_threads', 'similarity_cpu', 'similarity_cuda', 'warp_cpu', 'warp_cuda']
def build_info() -> dict:
    """
    What the core was compiled with and what the machine offers.
    """
def cuda_device_count() -> int:
    """
    Visible CUDA devices; 0 without CUDA, driver or GPU (never raises).
    """
def fit_cpu(params: numpy.ndarray, grads: numpy.ndarray, m: numpy.ndarray, v: numpy.ndarray, step: numpy.ndarray, active: numpy.ndarray, lr: typing.SupportsFloat | typing.SupportsIndex, lr_per_face: numpy.ndarray | None, loss: numpy.ndarray | None, prev_loss: numpy.ndarray | None, status: numpy.ndarray | None, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, lower: typing.SupportsFloat | typing.SupportsIndex, upper: typing.SupportsFloat | typing.SupportsIndex, tol_param: typing.SupportsFloat | typing.SupportsIndex, tol_loss: typing.SupportsFloat | typing.SupportsIndex, max_iterations: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    One projected Adam step in place on (N, D) float32 arrays; returns faces still active
    """
def fit_cuda(params: typing.SupportsInt | typing.SupportsIndex, grads: typing.SupportsInt | typing.SupportsIndex, m: typing.SupportsInt | typing.SupportsIndex, v: typing.SupportsInt | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex, active: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, d: typing.SupportsInt | typing.SupportsIndex, lr: typing.SupportsFloat | typing.SupportsIndex, lr_per_face: typing.SupportsInt | typing.SupportsIndex, loss: typing.SupportsInt | typing.SupportsIndex, prev_loss: typing.SupportsInt | typing.SupportsIndex, status: typing.SupportsInt | typing.SupportsIndex, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, lower: typing.SupportsFloat | typing.SupportsIndex, upper: typing.SupportsFloat | typing.SupportsIndex, tol_param: typing.SupportsFloat | typing.SupportsIndex, tol_loss: typing.SupportsFloat | typing.SupportsIndex, max_iterations: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Device twin of fit_cpu (pointers, 0 = absent); syncs the stream
    """
def fuse_cpu(logits: numpy.ndarray, thresholds: numpy.ndarray, probabilities: numpy.ndarray, active: numpy.ndarray) -> None:
    ...
def fuse_cuda(logits: typing.SupportsInt | typing.SupportsIndex, dtype: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, v: typing.SupportsInt | typing.SupportsIndex, l: typing.SupportsInt | typing.SupportsIndex, thresholds: typing.SupportsInt | typing.SupportsIndex, num_thresholds: typing.SupportsInt | typing.SupportsIndex, probabilities: typing.SupportsInt | typing.SupportsIndex, active: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def get_num_threads() -> int:
    """
    Threads used by the CPU kernels.
    """
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Set the threads used by the CPU kernels (values < 1 mean 1).
    """
def similarity_cpu(points: numpy.ndarray, template: numpy.ndarray) -> tuple:
    """
    (N,K,2) float64 points, (K,2) template -> ((N,2,3) src_to_dst matrices, (N,) int8 status)
    """
def similarity_cuda(points: typing.SupportsInt | typing.SupportsIndex, template: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, matrices: typing.SupportsInt | typing.SupportsIndex, status: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def warp_cpu(frames: numpy.ndarray, matrices: numpy.ndarray, frame_index: numpy.ndarray, out: numpy.ndarray, channel_map: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(3)"], scale: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(3)"], bias: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(3)"], border: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(3)"], dtype: typing.SupportsInt | typing.SupportsIndex, layout: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def warp_cuda(frames: typing.SupportsInt | typing.SupportsIndex, num_frames: typing.SupportsInt | typing.SupportsIndex, height: typing.SupportsInt | typing.SupportsIndex, width: typing.SupportsInt | typing.SupportsIndex, frame_stride: typing.SupportsInt | typing.SupportsIndex, row_stride: typing.SupportsInt | typing.SupportsIndex, matrices: typing.SupportsInt | typing.SupportsIndex, frame_index: typing.SupportsInt | typing.SupportsIndex, num_faces: typing.SupportsInt | typing.SupportsIndex, out: typing.SupportsInt | typing.SupportsIndex, out_height: typing.SupportsInt | typing.SupportsIndex, out_width: typing.SupportsInt | typing.SupportsIndex, channel_map: typing.Annotated[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], "FixedSize(3)"], scale: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(3)"], bias: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(3)"], border: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(3)"], dtype: typing.SupportsInt | typing.SupportsIndex, layout: typing.SupportsInt | typing.SupportsIndex, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
