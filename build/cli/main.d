build/cli/main.o: cli/main.c cli/../sd.h
cli/../sd.h:
