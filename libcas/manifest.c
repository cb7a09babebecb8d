/* SPDX-License-Identifier: MIT */
/* Manifest encoder and strict decoder. Work in progress. */
#include "libcas/manifest.h"
