"""Security primitives: field-level encryption of personal data (:mod:`backend.security.pii`)."""
