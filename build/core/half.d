build/core/half.o: core/half.c core/half.h
core/half.h:
