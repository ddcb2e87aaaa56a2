/* metrics.h — image distances for `sd compare`: RMSE and PSNR on the 0..255 scale over all channels. */
#ifndef CLI_METRICS_H
#define CLI_METRICS_H

#include "../sd.h"

/* Root-mean-square difference of two images of the same size and channels (0..255 units); -1 if they differ in shape. */
double metrics_rmse(const sd_image *a, const sd_image *b);
/* Peak signal-to-noise ratio in dB for peak 255: 20·log10(255 / rmse); +inf for identical images. */
double metrics_psnr(double rmse);

#endif
