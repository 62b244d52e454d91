/* smtp-submit: SMTP for local users on port 25, authenticated submission on 587
 * (STARTTLS) and 465 (implicit TLS), a spool, local delivery.  See submit.h for the
 * command line.  SKELETON: the daemon branch fills in the modes. */
#include <stdio.h>
#include "base/plimits.h"
#include "deliver.h"
#include "policy.h"
#include "submit.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "smtp-submit: not built yet\n");
	return 2;
}
