"""Running detectors: deadline, retries, circuit breakers, bulkheads and the result cache."""
