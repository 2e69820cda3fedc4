//! seawall: composable async resilience decorators.
