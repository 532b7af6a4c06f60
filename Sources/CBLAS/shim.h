// The system's CBLAS (OpenBLAS), used only when the package trait BLAS is enabled.
// Debian: apt-get install libopenblas-dev (puts cblas.h on the default include path).
#include <cblas.h>
