"""The HTTP API of the bus (``demat serve``): a front door over the kernel, with
identities, roles per tenant and strict tenant isolation."""
