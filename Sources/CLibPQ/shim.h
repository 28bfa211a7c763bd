#ifndef TAPE_CLIBPQ_SHIM_H
#define TAPE_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
