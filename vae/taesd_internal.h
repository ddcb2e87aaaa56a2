/* taesd_internal.h — TAESD's private layout, shared by taesd.c (names, loading, forwards) and taesd_run.c (the
 * host-level banded decode and encode). */
#ifndef VAE_TAESD_INTERNAL_H
#define VAE_TAESD_INTERNAL_H

#include "taesd.h"

typedef enum taesd_kind { TL_CONV, TL_BLOCK, TL_RELU, TL_UP } taesd_kind;

typedef struct taesd_layer {
    taesd_kind kind;
    int cin, cout, stride;          /* CONV: 3x3 (pad 1) with stride 1 or 2; BLOCK: cin -> cout */
    int has_bias;                   /* CONV */
    be_weight w, b;                 /* CONV (b.data NULL: no bias) */
    be_weight cw[3], cb[3], skip;   /* BLOCK: its three convs; skip.data NULL: identity */
} taesd_layer;

typedef struct taesd_coder {
    taesd_layer *l;
    int n;
    int cin, cout;                  /* input and output channels */
    int factor;                     /* resolution change: decoder up, encoder down */
    double reach;                   /* receptive-field radius of an output pixel, in latent pixels */
} taesd_coder;

struct taesd_model {
    be *b;
    taesd_coder dec, enc;
    int parts;
    int latent_channels, factor;
    float scaling, shift;
};

#endif
