#!/bin/sh
# A unit program with more SKIP lines than checks that passed.
echo "Running suite(s): odd"
echo "SKIP: one: a reason"
echo "SKIP: two: another reason"
echo "100%: Checks: 1, Failures: 0, Errors: 0"
