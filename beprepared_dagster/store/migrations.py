"""Numbered schema migrations of the workspace's DuckDB file. Append only; never edit an applied one."""

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "initial schema",
        """
        CREATE TABLE files (
            root VARCHAR NOT NULL,          -- a Load folder (absolute)
            path VARCHAR NOT NULL,          -- absolute path of the file
            size BIGINT,
            mtime_ns BIGINT,
            sha256 VARCHAR,                 -- NULL when the file could not be read
            error VARCHAR,                  -- why it could not be read
            seen_at TIMESTAMP DEFAULT current_timestamp,
            PRIMARY KEY (root, path)
        );
        CREATE TABLE node_cache (
            fingerprint VARCHAR NOT NULL,   -- node type + version + canonical parameters
            input VARCHAR NOT NULL,         -- digest of the properties the node reads
            value JSON NOT NULL,            -- the outcome: kept/rejected and the properties it sets
            created_at TIMESTAMP DEFAULT current_timestamp,
            PRIMARY KEY (fingerprint, input)
        );
        CREATE TABLE fingerprints (
            fingerprint VARCHAR PRIMARY KEY,
            node VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            params JSON NOT NULL
        );
        CREATE TABLE stage_rows (
            workflow VARCHAR NOT NULL,
            stage VARCHAR NOT NULL,
            image_id VARCHAR NOT NULL,      -- partition key: SHA-256 of the source file
            seq INTEGER NOT NULL,           -- several records per image after Concat of branches
            status VARCHAR NOT NULL,        -- kept | rejected | absent
            reason VARCHAR,
            at_stage VARCHAR,               -- the stage that rejected it
            props JSON,
            fingerprint VARCHAR NOT NULL,
            run_id VARCHAR,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (workflow, stage, image_id, seq)
        );
        """,
    ),
    (
        2,
        "human labels mirror and image insertion order",
        """
        CREATE TABLE labels (
            domain VARCHAR NOT NULL,        -- label domain (shared by every human stage of that domain)
            kind VARCHAR NOT NULL,          -- filter | tag | caption
            image_id VARCHAR NOT NULL,      -- image identity (SHA-256 of the source file)
            value JSON,                     -- the latest label; NULL once undone
            journal_id BIGINT NOT NULL,     -- id of the journal entry this mirrors (labels.sqlite)
            labeled_at TIMESTAMP,
            labeler VARCHAR,
            PRIMARY KEY (domain, kind, image_id)
        );
        CREATE TABLE human_applied (
            workflow VARCHAR NOT NULL,
            stage VARCHAR NOT NULL,
            image_id VARCHAR NOT NULL,
            journal_id BIGINT NOT NULL,     -- the journal entry the stage's row was computed from (0: none)
            PRIMARY KEY (workflow, stage, image_id)
        );
        CREATE TABLE image_order (
            workflow VARCHAR NOT NULL,
            image_id VARCHAR NOT NULL,
            ordinal BIGINT NOT NULL,        -- partition insertion order (what the labeling app follows)
            PRIMARY KEY (workflow, image_id)
        );
        """,
    ),
    (
        3,
        "image embeddings and learned models",
        """
        CREATE TABLE embeddings (
            space VARCHAR NOT NULL,         -- the model that computed it (`<id>@<commit>` or a folder)
            objectid VARCHAR NOT NULL,      -- the bytes embedded
            vector FLOAT[] NOT NULL,        -- L2-normalised
            created_at TIMESTAMP DEFAULT current_timestamp,
            PRIMARY KEY (space, objectid)
        );
        CREATE TABLE learned_models (
            key VARCHAR PRIMARY KEY,        -- digest of the node, its hyperparameters and the labels it saw
            node VARCHAR NOT NULL,
            domain VARCHAR,
            objectid VARCHAR NOT NULL,      -- the weights (safetensors) in the object store
            metrics JSON NOT NULL,          -- held-out accuracy, confusion matrix, label counts
            created_at TIMESTAMP DEFAULT current_timestamp
        );
        CREATE TABLE stage_models (
            workflow VARCHAR NOT NULL,
            stage VARCHAR NOT NULL,
            key VARCHAR,                    -- the learned model the stage's rows were decided with (NULL: none)
            summary JSON NOT NULL,          -- what the labeling tab and the metadata show
            updated_at TIMESTAMP DEFAULT current_timestamp,
            PRIMARY KEY (workflow, stage)
        );
        """,
    ),
]
