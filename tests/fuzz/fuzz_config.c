/*
 * fuzz_config.c - libFuzzer target for the config parser: any file
 * content yields errors or a config, never a crash or a leak.
 */
#include "common/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/relayd-fuzz-config-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	FILE *devnull = fopen("/dev/null", "w");
	struct config cfg;
	config_load(path, &cfg, devnull);
	config_free(&cfg);
	fclose(devnull);
	unlink(path);
	return 0;
}
