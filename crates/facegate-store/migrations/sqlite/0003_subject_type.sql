ALTER TABLE clients ADD COLUMN subject_type TEXT
