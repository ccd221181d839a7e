/* runner_main.c - berth-plugin-runner: one job of an isolated plugin type
 * in its own process, started by berthd (engine/isolate.h). A separate
 * executable only because it starts faster than berthd: it links libc and
 * cJSON, not berthd's HTTP, TLS, YAML and Redis libraries. */
#include "engine/isolate.h"

int
main(int argc, char **argv)
{
	return isolate_runner_main(argc, argv);
}
