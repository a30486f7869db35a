"""Contract tests: the same assertions run against the fake Twenty and, when
TWENTY_TEST_URL and TWENTY_TEST_API_KEY are set, a real Twenty server, so the fake cannot drift."""
