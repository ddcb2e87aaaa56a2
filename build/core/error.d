build/core/error.o: core/error.c core/error.h core/../sd.h
core/error.h:
core/../sd.h:
