-- The key-value table of the storage port. The "C" collation makes the
-- primary key order bytewise, which List relies on, whatever collation the
-- database defaults to. Values are barrier ciphertext; versions start at 1.
CREATE TABLE customerkey_kv (
    key     text COLLATE "C" PRIMARY KEY,
    value   bytea  NOT NULL,
    version bigint NOT NULL CHECK (version > 0)
);
