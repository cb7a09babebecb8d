/* SPDX-License-Identifier: MIT */
/* Gear-hash content-defined chunker (FastCDC family). Work in progress. */
#include "libcas/chunker.h"
