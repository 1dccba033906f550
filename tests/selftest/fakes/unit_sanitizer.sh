#!/bin/sh
# A unit program that passes but leaves a sanitizer report behind.
echo "ERROR: AddressSanitizer: heap-use-after-free (fake)" > "$SANITIZE_LOG_DIR/asan.$$"
echo "Running suite(s): san"
echo "100%: Checks: 2, Failures: 0, Errors: 0"
