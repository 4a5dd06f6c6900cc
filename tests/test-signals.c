/* SPDX-License-Identifier: MIT */
/* Unit tests for common/signals.c: a blocked signal arrives on the fd. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "signals.h"

static void test_signal_arrives(void **state)
{
	int fd = signals_open((const int[]){ SIGUSR1, SIGUSR2 }, 2, 0);
	sigset_t cur;

	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* blocked, so raising it does not kill the test */
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
	assert_true(sigismember(&cur, SIGUSR1));
	assert_int_equal(signals_wait(fd, 0), 0);
	assert_int_equal(raise(SIGUSR2), 0);
	assert_int_equal(signals_wait(fd, 1000), SIGUSR2);
	assert_int_equal(signals_wait(fd, 10), 0);
	/* SIGPIPE is ignored: a write to a closed pipe is EPIPE, not death */
	{
		int p[2];

		assert_int_equal(pipe(p), 0);
		close(p[0]);
		assert_int_equal(write(p[1], "x", 1), -1);
		assert_int_equal(errno, EPIPE);
		close(p[1]);
	}
	close(fd);
}

static void test_bad_signal(void **state)
{
	assert_int_equal(signals_open((const int[]){ 0x7fff }, 1, 0), -EINVAL);
	assert_int_equal(signals_wait(-1, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signal_arrives),
		cmocka_unit_test(test_bad_signal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
