package outbox_test

const envChaosRole = "FJORD_OUTBOX_CHAOS_ROLE"

func chaosChild() {}
