/* pipeline.h — internal declarations shared by the pipeline's files (the public API is sd.h). */
#ifndef PIPELINE_PIPELINE_H
#define PIPELINE_PIPELINE_H

#include <stdio.h>

#include "../sd.h"

/* Checks a parameter set against the resolved size (sampler names are checked by the scheduler). */
sd_status sd_params_validate(const sd_gen_params *p, int width, int height);

#endif
