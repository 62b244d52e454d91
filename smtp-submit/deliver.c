/* Local delivery and the queue commands: see deliver.h.  STUB until the delivery branch
 * lands: nothing is delivered, every message stays queued. */
#include "deliver.h"

int deliver_message(const struct config *cfg, const char *id, const char **error_r)
{
	(void)cfg;
	(void)id;
	(void)error_r;
	return 0;
}

int queue_run(const struct config *cfg)
{
	(void)cfg;
	return 0;
}

int queue_list(const struct config *cfg, FILE *out)
{
	(void)cfg;
	fprintf(out, "Mail queue is empty\n");
	return 0;
}

int submit_check(const struct config *cfg, FILE *out)
{
	(void)cfg;
	(void)out;
	return 0;
}
