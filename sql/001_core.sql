-- SPDX-License-Identifier: Apache-2.0
-- 001: the grid information service's core relations.
--
-- Every resource, physical or virtual, takes its id from one sequence
-- (gis.resource_id), so an id names exactly one resource across all tables;
-- gis.resources and gis.virtualization (003) rely on that.
-- Sizes: memory in MiB, disk in GiB. Names follow gis.valid_name().

CREATE SCHEMA gis;
COMMENT ON SCHEMA gis IS 'vigo grid information service: physical, virtual and future resources';

CREATE SEQUENCE gis.resource_id AS bigint;

-- Input checks shared by every function that takes input. Each raises
-- SQLSTATE 22023 with a message that starts "invalid <field>:".
CREATE FUNCTION gis.valid_name(p_name text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';

CREATE FUNCTION gis.check_name(p_field text, p_value text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_value IS NULL THEN
    RAISE EXCEPTION 'invalid %: must not be null', p_field USING ERRCODE = '22023';
  END IF;
  IF NOT gis.valid_name(p_value) THEN
    RAISE EXCEPTION 'invalid %: % is not a name (1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit)',
      p_field, quote_literal(left(p_value, 80)) USING ERRCODE = '22023';
  END IF;
END $$;

CREATE FUNCTION gis.check_range(p_field text, p_value bigint, p_min bigint, p_max bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_value IS NULL THEN
    RAISE EXCEPTION 'invalid %: must not be null', p_field USING ERRCODE = '22023';
  END IF;
  IF p_value < p_min OR p_value > p_max THEN
    RAISE EXCEPTION 'invalid %: must be between % and % (got %)', p_field, p_min, p_max, p_value
      USING ERRCODE = '22023';
  END IF;
END $$;

CREATE FUNCTION gis.check_labels(p_field text, p_value jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN
    RAISE EXCEPTION 'invalid %: must be a JSON object of string labels', p_field USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_each(p_value) e WHERE jsonb_typeof(e.value) <> 'string'
                                                    OR length(e.key) NOT BETWEEN 1 AND 63) THEN
    RAISE EXCEPTION 'invalid %: keys must be 1-63 characters and values strings', p_field
      USING ERRCODE = '22023';
  END IF;
END $$;

CREATE FUNCTION gis.check_arch(p_field text, p_value text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_value IS NULL OR p_value !~ '^[a-z0-9_]{1,16}$' THEN
    RAISE EXCEPTION 'invalid %: % is not an architecture name (e.g. x86_64)', p_field,
      coalesce(quote_literal(left(p_value, 40)), 'null') USING ERRCODE = '22023';
  END IF;
END $$;

-- ---------------------------------------------------------------- physical
CREATE TABLE gis.sites (
  id          bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  name        text NOT NULL UNIQUE CHECK (gis.valid_name(name)),
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gis.networks (
  id         bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  name       text NOT NULL UNIQUE CHECK (gis.valid_name(name)),
  site_id    bigint NOT NULL REFERENCES gis.sites ON DELETE RESTRICT,
  cidr       cidr,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX networks_site ON gis.networks (site_id);

CREATE TYPE gis.host_state AS ENUM ('up', 'draining', 'down', 'retired');

-- Capacity is counted in the row itself: alloc_* is the sum over the VMs
-- that hold capacity on the host (maintained by the triggers of 002, never
-- written by hand), and the CHECK makes overcommit impossible even if a
-- caller bypasses every function.
CREATE TABLE gis.hosts (
  id              bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  name            text NOT NULL UNIQUE CHECK (gis.valid_name(name)),
  network_id      bigint NOT NULL REFERENCES gis.networks ON DELETE RESTRICT,
  libvirt_uri     text NOT NULL CHECK (length(libvirt_uri) BETWEEN 1 AND 512),
  arch            text NOT NULL DEFAULT 'x86_64' CHECK (arch ~ '^[a-z0-9_]{1,16}$'),
  cpus            integer NOT NULL CHECK (cpus BETWEEN 1 AND 4096),
  memory_mb       bigint NOT NULL CHECK (memory_mb BETWEEN 64 AND 67108864),
  disk_gb         bigint NOT NULL CHECK (disk_gb BETWEEN 0 AND 1048576),
  labels          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
  state           gis.host_state NOT NULL DEFAULT 'up',
  alloc_vcpus     integer NOT NULL DEFAULT 0,
  alloc_memory_mb bigint NOT NULL DEFAULT 0,
  alloc_disk_gb   bigint NOT NULL DEFAULT 0,
  free_vcpus      integer GENERATED ALWAYS AS (cpus - alloc_vcpus) STORED,
  free_memory_mb  bigint GENERATED ALWAYS AS (memory_mb - alloc_memory_mb) STORED,
  free_disk_gb    bigint GENERATED ALWAYS AS (disk_gb - alloc_disk_gb) STORED,
  registered_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT hosts_no_overcommit CHECK (
    alloc_vcpus BETWEEN 0 AND cpus AND
    alloc_memory_mb BETWEEN 0 AND memory_mb AND
    alloc_disk_gb BETWEEN 0 AND disk_gb)
);
CREATE INDEX hosts_network ON gis.hosts (network_id);
CREATE INDEX hosts_up_by_free_memory ON gis.hosts (free_memory_mb) WHERE state = 'up';
CREATE INDEX hosts_labels ON gis.hosts USING gin (labels jsonb_path_ops);

-- Heartbeats live apart from hosts so that 10,000 updates a second touch a
-- narrow row (HOT updates, fillfactor) and never contend with claims.
CREATE TABLE gis.host_heartbeats (
  host_id   bigint PRIMARY KEY REFERENCES gis.hosts ON DELETE CASCADE,
  last_seen timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

CREATE TABLE gis.image_servers (
  id         bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  name       text NOT NULL UNIQUE CHECK (gis.valid_name(name)),
  site_id    bigint NOT NULL REFERENCES gis.sites ON DELETE RESTRICT,
  endpoint   text NOT NULL CHECK (length(endpoint) BETWEEN 1 AND 512),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gis.data_servers (
  id         bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  name       text NOT NULL UNIQUE CHECK (gis.valid_name(name)),
  site_id    bigint NOT NULL REFERENCES gis.sites ON DELETE RESTRICT,
  endpoint   text NOT NULL CHECK (length(endpoint) BETWEEN 1 AND 512),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- ----------------------------------------------------------------- virtual
CREATE TABLE gis.users (
  id         bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  name       text NOT NULL UNIQUE CHECK (gis.valid_name(name)),
  is_admin   boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Tokens are stored as SHA-256 digests only; the clear token is shown once.
CREATE TABLE gis.api_tokens (
  id           bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  user_id      bigint NOT NULL REFERENCES gis.users ON DELETE CASCADE,
  token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  label        text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_tokens_user ON gis.api_tokens (user_id);

-- A profile is a VM shape in the spirit of OSCAR-V's profiles; futures are
-- computed per (host, profile).
CREATE TABLE gis.profiles (
  id         bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  name       text NOT NULL UNIQUE CHECK (gis.valid_name(name)),
  vcpus      integer NOT NULL CHECK (vcpus BETWEEN 1 AND 1024),
  memory_mb  bigint NOT NULL CHECK (memory_mb BETWEEN 16 AND 16777216),
  disk_gb    bigint NOT NULL DEFAULT 0 CHECK (disk_gb BETWEEN 0 AND 1048576),
  arch       text NOT NULL DEFAULT 'x86_64' CHECK (arch ~ '^[a-z0-9_]{1,16}$'),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE gis.image_kind AS ENUM ('disk', 'memory');

-- An image version is immutable; owner_id NULL means public.
CREATE TABLE gis.images (
  id              bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  name            text NOT NULL CHECK (gis.valid_name(name)),
  version         integer NOT NULL CHECK (version >= 1),
  kind            gis.image_kind NOT NULL DEFAULT 'disk',
  owner_id        bigint REFERENCES gis.users ON DELETE RESTRICT,
  image_server_id bigint NOT NULL REFERENCES gis.image_servers ON DELETE RESTRICT,
  size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
  digest          text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now(),
  deleted_at      timestamptz,
  UNIQUE (name, version)
);

CREATE TYPE gis.vm_state AS ENUM
  ('pending', 'preparing', 'starting', 'running', 'paused', 'stopping', 'stopped', 'failed', 'deleted');

-- The states in which a VM holds capacity on its host.
CREATE FUNCTION gis.holds_capacity(p_state gis.vm_state) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_state IN ('pending', 'preparing', 'starting', 'running', 'paused', 'stopping');

CREATE TABLE gis.workspaces (
  id             bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  owner_id       bigint NOT NULL REFERENCES gis.users ON DELETE RESTRICT,
  name           text NOT NULL CHECK (gis.valid_name(name)),
  state          gis.vm_state NOT NULL DEFAULT 'pending',
  persistent     boolean NOT NULL DEFAULT false,
  data_server_id bigint REFERENCES gis.data_servers ON DELETE RESTRICT,
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (id, owner_id)
);
CREATE UNIQUE INDEX workspaces_live_name ON gis.workspaces (owner_id, name) WHERE state <> 'deleted';

-- owner_id repeats the workspace's owner (the composite foreign key keeps the
-- two equal) so that row-level security needs no join.
CREATE TABLE gis.vms (
  id            bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  workspace_id  bigint NOT NULL,
  owner_id      bigint NOT NULL,
  name          text NOT NULL CHECK (gis.valid_name(name)),
  profile_id    bigint REFERENCES gis.profiles ON DELETE SET NULL,
  vcpus         integer NOT NULL CHECK (vcpus BETWEEN 1 AND 1024),
  memory_mb     bigint NOT NULL CHECK (memory_mb BETWEEN 16 AND 16777216),
  disk_gb       bigint NOT NULL DEFAULT 0 CHECK (disk_gb BETWEEN 0 AND 1048576),
  arch          text NOT NULL DEFAULT 'x86_64',
  state         gis.vm_state NOT NULL DEFAULT 'pending',
  host_id       bigint REFERENCES gis.hosts ON DELETE RESTRICT,
  image_id      bigint REFERENCES gis.images ON DELETE RESTRICT,
  checkpoint_id bigint,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (workspace_id, owner_id) REFERENCES gis.workspaces (id, owner_id) ON DELETE CASCADE,
  CONSTRAINT vms_placed_when_active CHECK (NOT gis.holds_capacity(state) OR host_id IS NOT NULL)
);
CREATE INDEX vms_host ON gis.vms (host_id) WHERE host_id IS NOT NULL;
CREATE INDEX vms_owner ON gis.vms (owner_id);
CREATE INDEX vms_workspace ON gis.vms (workspace_id);
CREATE UNIQUE INDEX vms_live_name ON gis.vms (workspace_id, name) WHERE state <> 'deleted';

CREATE TABLE gis.checkpoints (
  id              bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  owner_id        bigint NOT NULL REFERENCES gis.users ON DELETE RESTRICT,
  vm_id           bigint REFERENCES gis.vms ON DELETE SET NULL,
  name            text NOT NULL CHECK (gis.valid_name(name)),
  memory_image_id bigint NOT NULL REFERENCES gis.images ON DELETE RESTRICT,
  disk_image_id   bigint NOT NULL REFERENCES gis.images ON DELETE RESTRICT,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (owner_id, name)
);
ALTER TABLE gis.vms ADD FOREIGN KEY (checkpoint_id) REFERENCES gis.checkpoints ON DELETE SET NULL;

-- ----------------------------------------------------------------- futures
-- A future is a VM that does not exist yet but can be instantiated now: a
-- profile on an 'up' host with room for it. slots says how many such VMs fit.
-- Rows are maintained by the triggers of 002 in the same transaction as the
-- capacity change, so they are never stale; an id stays the same while its
-- (host, profile) keeps room, and is withdrawn when the room goes.
CREATE TABLE gis.futures (
  id         bigint PRIMARY KEY DEFAULT nextval('gis.resource_id'),
  host_id    bigint NOT NULL REFERENCES gis.hosts ON DELETE CASCADE,
  profile_id bigint NOT NULL REFERENCES gis.profiles ON DELETE CASCADE,
  slots      integer NOT NULL CHECK (slots > 0),
  UNIQUE (host_id, profile_id)
);
CREATE INDEX futures_profile ON gis.futures (profile_id);
