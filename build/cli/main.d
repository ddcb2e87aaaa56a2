build/cli/main.o: cli/main.c cli/../sd.h cli/cli.h
cli/../sd.h:
cli/cli.h:
