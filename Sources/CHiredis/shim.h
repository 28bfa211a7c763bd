#ifndef TAPE_CHIREDIS_SHIM_H
#define TAPE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
