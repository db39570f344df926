// C++ exceptions of the core. The bindings translate each into the auperf.errors class of the
// same name, so Python callers see one typed hierarchy.
#pragma once

#include <stdexcept>
#include <string>

namespace auperf {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShapeError : Error {
  using Error::Error;
};
struct DTypeError : Error {
  using Error::Error;
};
struct ValueRangeError : Error {
  using Error::Error;
};
struct IndexRangeError : Error {
  using Error::Error;
};
struct NonFiniteError : Error {
  using Error::Error;
};
struct SingularMatrixError : Error {
  using Error::Error;
};
struct CudaError : Error {
  using Error::Error;
};
struct CudaUnavailableError : Error {
  using Error::Error;
};

}  // namespace auperf
