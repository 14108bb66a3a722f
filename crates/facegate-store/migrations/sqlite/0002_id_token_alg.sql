ALTER TABLE clients ADD COLUMN id_token_alg TEXT
