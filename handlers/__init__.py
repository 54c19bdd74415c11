"""Feature modules: each exposes a `handlers` (bot.router.Handlers) object."""
