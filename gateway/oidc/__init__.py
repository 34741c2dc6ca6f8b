"""Staff sign-in through an OpenID Connect provider, and the step-up before impersonation."""
