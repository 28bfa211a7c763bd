#ifndef TAPE_CXGBOOST_SHIM_H
#define TAPE_CXGBOOST_SHIM_H
#include <xgboost/c_api.h>
#endif
