build/tests/test_half.o: tests/test_half.c tests/test.h \
 tests/../core/half.h
tests/test.h:
tests/../core/half.h:
