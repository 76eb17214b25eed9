"""Where drafts come from: one package per provider, all behind the same interface (`base.Provider`)."""
