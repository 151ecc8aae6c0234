// libzmq's C API (Debian: libzmq3-dev, libzmq 4.3).
#include <zmq.h>
