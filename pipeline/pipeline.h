/* pipeline.h — internal declarations shared by the pipeline's files (the public API is sd.h). */
#ifndef PIPELINE_PIPELINE_H
#define PIPELINE_PIPELINE_H

#include <stdio.h>

#include "../sd.h"

#endif
