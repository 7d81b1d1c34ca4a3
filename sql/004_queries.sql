-- SPDX-License-Identifier: Apache-2.0
-- 004: the compositional queries, callable from psql and from the C++ API.
-- All are read-only (STABLE) and SECURITY INVOKER, so row-level security
-- (005) applies to whoever calls them.

-- Query 1: hosts that can instantiate a VM of the given shape now.
-- p_policy 'spread' lists the emptiest hosts first, 'pack' the fullest that fit.
CREATE FUNCTION gis.hosts_that_fit(p_memory_mb bigint, p_vcpus integer DEFAULT 1, p_disk_gb bigint DEFAULT 0,
                                   p_arch text DEFAULT NULL, p_labels jsonb DEFAULT '{}',
                                   p_network text DEFAULT NULL, p_policy text DEFAULT 'spread',
                                   p_limit integer DEFAULT 100)
RETURNS TABLE (host_id bigint, host text, network text, free_vcpus integer, free_memory_mb bigint,
               free_disk_gb bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_network bigint;
BEGIN
  PERFORM gis.check_range('memory_mb', p_memory_mb, 16, 16777216);
  PERFORM gis.check_range('vcpus', p_vcpus, 1, 1024);
  PERFORM gis.check_range('disk_gb', p_disk_gb, 0, 1048576);
  IF p_arch IS NOT NULL THEN PERFORM gis.check_arch('arch', p_arch); END IF;
  PERFORM gis.check_labels('labels', p_labels);
  IF p_network IS NOT NULL THEN v_network := gis.network_id('network', p_network); END IF;
  IF p_policy IS NULL OR p_policy NOT IN ('spread', 'pack') THEN
    RAISE EXCEPTION 'invalid policy: must be spread or pack' USING ERRCODE = '22023';
  END IF;
  PERFORM gis.check_range('limit', p_limit, 1, 10000);

  IF p_policy = 'spread' THEN
    RETURN QUERY
    SELECT h.id, h.name, n.name, h.free_vcpus, h.free_memory_mb, h.free_disk_gb
      FROM gis.hosts h JOIN gis.networks n ON n.id = h.network_id
     WHERE h.state = 'up' AND h.free_memory_mb >= p_memory_mb AND h.free_vcpus >= p_vcpus
       AND h.free_disk_gb >= p_disk_gb AND (p_arch IS NULL OR h.arch = p_arch)
       AND h.labels @> p_labels AND (v_network IS NULL OR h.network_id = v_network)
     ORDER BY h.free_memory_mb DESC, h.id
     LIMIT p_limit;
  ELSE
    RETURN QUERY
    SELECT h.id, h.name, n.name, h.free_vcpus, h.free_memory_mb, h.free_disk_gb
      FROM gis.hosts h JOIN gis.networks n ON n.id = h.network_id
     WHERE h.state = 'up' AND h.free_memory_mb >= p_memory_mb AND h.free_vcpus >= p_vcpus
       AND h.free_disk_gb >= p_disk_gb AND (p_arch IS NULL OR h.arch = p_arch)
       AND h.labels @> p_labels AND (v_network IS NULL OR h.network_id = v_network)
     ORDER BY h.free_memory_mb ASC, h.id
     LIMIT p_limit;
  END IF;
END $$;

-- Query 1 by profile name: the futures of that profile, i.e. the hosts that
-- can take it, each with the future id to claim.
CREATE FUNCTION gis.hosts_for_profile(p_profile text, p_labels jsonb DEFAULT '{}', p_network text DEFAULT NULL,
                                      p_limit integer DEFAULT 100)
RETURNS TABLE (future_id bigint, host_id bigint, host text, network text, slots integer)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_profile bigint := gis.profile_id('profile', p_profile);
  v_network bigint;
BEGIN
  PERFORM gis.check_labels('labels', p_labels);
  IF p_network IS NOT NULL THEN v_network := gis.network_id('network', p_network); END IF;
  PERFORM gis.check_range('limit', p_limit, 1, 10000);
  RETURN QUERY
  SELECT f.id, h.id, h.name, n.name, f.slots
    FROM gis.futures f JOIN gis.hosts h ON h.id = f.host_id JOIN gis.networks n ON n.id = h.network_id
   WHERE f.profile_id = v_profile AND h.labels @> p_labels AND (v_network IS NULL OR h.network_id = v_network)
   ORDER BY f.slots DESC, f.id
   LIMIT p_limit;
END $$;

-- Query 2: sets of p_n distinct VMs on one network whose memory adds up to
-- [p_min_memory_mb, p_max_memory_mb]. p_source picks existing VMs ('vms'),
-- futures ('futures') or both. The search is scoped by network (one network
-- at a time, loaded by index), and a depth-first walk over the candidates
-- sorted by memory prunes every branch whose smallest possible total is over
-- the bound (and stops there: later branches are larger) or whose largest is
-- under it, so the first answers come in time independent of how many answers
-- exist. With p_seed the networks are visited in random order and each set is
-- drawn at random (sampling); without it the answer is deterministic.
-- p_budget bounds the steps of the walk (an approximate answer, never a hang).
CREATE FUNCTION gis.vm_sets(p_n integer, p_min_memory_mb bigint, p_max_memory_mb bigint,
                            p_source text DEFAULT 'vms', p_limit integer DEFAULT 100,
                            p_network text DEFAULT NULL, p_seed double precision DEFAULT NULL,
                            p_budget integer DEFAULT 1000000)
RETURNS TABLE (set_no integer, network text, members bigint[], member_names text[], total_memory_mb bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_network bigint;
  net record;
  ids bigint[]; names text[]; m bigint[]; ps bigint[];
  len integer; idx integer[]; sums bigint[];
  d integer; j integer; r integer; s bigint; lo_j integer; hi_j integer; a integer; k integer;
  found_count integer := 0; steps integer := 0; tries integer;
  seen text[] := '{}'; key text; pick integer[];
BEGIN
  PERFORM gis.check_range('n', p_n, 1, 64);
  PERFORM gis.check_range('min_memory_mb', p_min_memory_mb, 0, 1073741824);
  PERFORM gis.check_range('max_memory_mb', p_max_memory_mb, 0, 1073741824);
  IF p_min_memory_mb > p_max_memory_mb THEN
    RAISE EXCEPTION 'invalid min_memory_mb: % is above max_memory_mb %', p_min_memory_mb, p_max_memory_mb
      USING ERRCODE = '22023';
  END IF;
  IF p_source IS NULL OR p_source NOT IN ('vms', 'futures', 'both') THEN
    RAISE EXCEPTION 'invalid source: must be vms, futures or both' USING ERRCODE = '22023';
  END IF;
  PERFORM gis.check_range('limit', p_limit, 1, 10000);
  PERFORM gis.check_range('budget', p_budget, 1, 100000000);
  IF p_seed IS NOT NULL AND (p_seed < -1 OR p_seed > 1) THEN
    RAISE EXCEPTION 'invalid seed: must be between -1 and 1' USING ERRCODE = '22023';
  END IF;
  IF p_network IS NOT NULL THEN v_network := gis.network_id('network', p_network); END IF;
  IF p_seed IS NOT NULL THEN PERFORM setseed(p_seed); END IF;

  FOR net IN
    SELECT nw.id, nw.name FROM gis.networks nw
     WHERE v_network IS NULL OR nw.id = v_network
     ORDER BY CASE WHEN p_seed IS NULL THEN 0 ELSE random() END, nw.id
  LOOP
    SELECT array_agg(c.id ORDER BY c.mem, c.id), array_agg(c.name ORDER BY c.mem, c.id),
           array_agg(c.mem ORDER BY c.mem, c.id)
      INTO ids, names, m
      FROM (SELECT v.id, v.name, v.memory_mb AS mem
              FROM gis.hosts h JOIN gis.vms v ON v.host_id = h.id
             WHERE p_source IN ('vms', 'both') AND h.network_id = net.id
               AND gis.holds_capacity(v.state) AND v.memory_mb <= p_max_memory_mb
            UNION ALL
            SELECT f.id, p.name || '@' || h.name, p.memory_mb
              FROM gis.hosts h JOIN gis.futures f ON f.host_id = h.id JOIN gis.profiles p ON p.id = f.profile_id
             WHERE p_source IN ('futures', 'both') AND h.network_id = net.id
               AND p.memory_mb <= p_max_memory_mb) c;
    len := coalesce(cardinality(ids), 0);
    CONTINUE WHEN len < p_n;
    -- ps[k] = m[1] + ... + m[k], ps[0] = 0
    ps := '[0:0]={0}'::bigint[];
    FOR k IN 1..len LOOP ps[k] := ps[k - 1] + m[k]; END LOOP;
    CONTINUE WHEN ps[p_n] > p_max_memory_mb OR ps[len] - ps[len - p_n] < p_min_memory_mb;

    IF p_seed IS NULL THEN
      -- Deterministic depth-first walk in lexicographic order.
      idx := array_fill(0, ARRAY[p_n]); sums := array_fill(0::bigint, ARRAY[p_n]);
      d := 1;
      LOOP
        steps := steps + 1;
        IF steps > p_budget THEN RETURN; END IF;
        idx[d] := idx[d] + 1;
        j := idx[d];
        r := p_n - d;
        s := CASE WHEN d = 1 THEN 0 ELSE sums[d - 1] END;
        IF j > len - r OR s + ps[j + r] - ps[j - 1] > p_max_memory_mb THEN
          -- exhausted at this depth (larger j only make the total larger)
          d := d - 1;
          EXIT WHEN d = 0;
          CONTINUE;
        END IF;
        CONTINUE WHEN s + m[j] + ps[len] - ps[len - r] < p_min_memory_mb;
        sums[d] := s + m[j];
        IF d = p_n THEN
          found_count := found_count + 1;
          set_no := found_count; network := net.name;
          members := ids[idx[1]:idx[1]] ; member_names := names[idx[1]:idx[1]];
          FOR k IN 2..p_n LOOP
            members := members || ids[idx[k]]; member_names := member_names || names[idx[k]];
          END LOOP;
          total_memory_mb := sums[d];
          RETURN NEXT;
          IF found_count >= p_limit THEN RETURN; END IF;
        ELSE
          d := d + 1;
          idx[d] := j;
        END IF;
      END LOOP;
    ELSE
      -- Sampling: draw each member uniformly from the indices that can
      -- still complete a set (an interval, since m is sorted); retry on a
      -- dead end or a repeat, a bounded number of times per network.
      tries := 0;
      WHILE tries < 20 * p_limit LOOP
        tries := tries + 1;
        pick := '{}'; s := 0; j := 0;
        FOR dd IN 1..p_n LOOP
          r := p_n - dd;
          -- lowest j whose largest completion reaches the minimum (binary search)
          lo_j := j + 1; hi_j := len - r + 1;
          WHILE lo_j < hi_j LOOP
            k := (lo_j + hi_j) / 2; steps := steps + 1;
            IF s + m[k] + ps[len] - ps[len - r] >= p_min_memory_mb THEN hi_j := k; ELSE lo_j := k + 1; END IF;
          END LOOP;
          -- highest j whose smallest completion stays under the maximum
          a := lo_j - 1; hi_j := len - r;
          WHILE a < hi_j LOOP
            k := (a + hi_j + 1) / 2; steps := steps + 1;
            IF s + ps[k + r] - ps[k - 1] <= p_max_memory_mb THEN a := k; ELSE hi_j := k - 1; END IF;
          END LOOP;
          EXIT WHEN hi_j < lo_j;
          j := lo_j + floor(random() * (hi_j - lo_j + 1))::integer;
          pick := pick || j; s := s + m[j];
        END LOOP;
        IF steps > p_budget THEN RETURN; END IF;
        CONTINUE WHEN cardinality(pick) < p_n OR s < p_min_memory_mb OR s > p_max_memory_mb;
        key := array_to_string(pick, ',');
        CONTINUE WHEN key = ANY (seen);
        seen := seen || key;
        found_count := found_count + 1;
        set_no := found_count; network := net.name; total_memory_mb := s;
        members := '{}'; member_names := '{}';
        FOREACH j IN ARRAY pick LOOP
          members := members || ids[j]; member_names := member_names || names[j];
        END LOOP;
        RETURN NEXT;
        IF found_count >= p_limit THEN RETURN; END IF;
      END LOOP;
    END IF;
  END LOOP;
END $$;

-- Query 3: gang placement. One host per requested VM, all on one network:
-- distinct hosts (p_distinct_hosts) or packed onto as few as fit. Networks
-- are tried from the one with the most free memory; within a network the
-- VMs are placed largest first (onto the emptiest unused host when
-- distinct, onto the fullest host that still fits when packed). A proposal
-- only: claim with gis.claim_on_host in one transaction.
CREATE FUNCTION gis.gang_place(p_memory_mb bigint[], p_vcpus integer[], p_disk_gb bigint[] DEFAULT NULL,
                               p_distinct_hosts boolean DEFAULT true, p_network text DEFAULT NULL,
                               p_arch text DEFAULT 'x86_64', p_labels jsonb DEFAULT '{}')
RETURNS TABLE (vm_index integer, host_id bigint, host text, network text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  n integer := coalesce(cardinality(p_memory_mb), 0);
  v_network bigint;
  disk bigint[];
  order_idx integer[];
  total_mem bigint; max_mem bigint;
  net record;
  hid bigint[]; hname text[]; fc bigint[]; fm bigint[]; fd bigint[]; used boolean[];
  hn integer; best integer; k integer; i integer;
  assign integer[];
  ok boolean;
BEGIN
  PERFORM gis.check_range('count', n, 1, 1000);
  IF coalesce(cardinality(p_vcpus), 0) <> n OR (p_disk_gb IS NOT NULL AND cardinality(p_disk_gb) <> n) THEN
    RAISE EXCEPTION 'invalid vcpus: memory_mb, vcpus and disk_gb must have % elements each', n
      USING ERRCODE = '22023';
  END IF;
  disk := coalesce(p_disk_gb, array_fill(0::bigint, ARRAY[n]));
  FOR k IN 1..n LOOP
    PERFORM gis.check_range(format('memory_mb[%s]', k), p_memory_mb[k], 16, 16777216);
    PERFORM gis.check_range(format('vcpus[%s]', k), p_vcpus[k], 1, 1024);
    PERFORM gis.check_range(format('disk_gb[%s]', k), disk[k], 0, 1048576);
  END LOOP;
  PERFORM gis.check_arch('arch', p_arch);
  PERFORM gis.check_labels('labels', p_labels);
  IF p_network IS NOT NULL THEN v_network := gis.network_id('network', p_network); END IF;
  IF p_distinct_hosts IS NULL THEN
    RAISE EXCEPTION 'invalid distinct_hosts: must not be null' USING ERRCODE = '22023';
  END IF;

  SELECT array_agg(t.k ORDER BY t.mem DESC, t.k), sum(t.mem), max(t.mem)
    INTO order_idx, total_mem, max_mem
    FROM unnest(p_memory_mb) WITH ORDINALITY AS t(mem, k);

  FOR net IN
    SELECT h.network_id AS id, nw.name
      FROM gis.hosts h JOIN gis.networks nw ON nw.id = h.network_id
     WHERE h.state = 'up' AND h.arch = p_arch AND (v_network IS NULL OR h.network_id = v_network)
     GROUP BY h.network_id, nw.name
    HAVING sum(h.free_memory_mb) >= total_mem AND max(h.free_memory_mb) >= max_mem
       AND (NOT p_distinct_hosts OR count(*) >= n)
     ORDER BY sum(h.free_memory_mb) DESC, h.network_id
  LOOP
    SELECT array_agg(h.id ORDER BY h.free_memory_mb DESC, h.id), array_agg(h.name ORDER BY h.free_memory_mb DESC, h.id),
           array_agg(h.free_vcpus::bigint ORDER BY h.free_memory_mb DESC, h.id),
           array_agg(h.free_memory_mb ORDER BY h.free_memory_mb DESC, h.id),
           array_agg(h.free_disk_gb ORDER BY h.free_memory_mb DESC, h.id)
      INTO hid, hname, fc, fm, fd
      FROM gis.hosts h
     WHERE h.network_id = net.id AND h.state = 'up' AND h.arch = p_arch AND h.labels @> p_labels
       AND h.free_vcpus >= 1 AND h.free_memory_mb >= 16;
    hn := coalesce(cardinality(hid), 0);
    CONTINUE WHEN hn = 0 OR (p_distinct_hosts AND hn < n);
    used := array_fill(false, ARRAY[hn]);
    assign := array_fill(0, ARRAY[n]);
    ok := true;
    FOREACH i IN ARRAY order_idx LOOP
      best := 0;
      FOR k IN 1..hn LOOP
        CONTINUE WHEN p_distinct_hosts AND used[k];
        CONTINUE WHEN fm[k] < p_memory_mb[i] OR fc[k] < p_vcpus[i] OR fd[k] < disk[i];
        IF p_distinct_hosts THEN best := k; EXIT; END IF;   -- hosts are sorted emptiest first
        IF best = 0 OR fm[k] < fm[best] THEN best := k; END IF;  -- best fit
      END LOOP;
      IF best = 0 THEN ok := false; EXIT; END IF;
      assign[i] := best; used[best] := true;
      fm[best] := fm[best] - p_memory_mb[i]; fc[best] := fc[best] - p_vcpus[i]; fd[best] := fd[best] - disk[i];
    END LOOP;
    IF ok THEN
      FOR k IN 1..n LOOP
        vm_index := k; host_id := hid[assign[k]]; host := hname[assign[k]]; network := net.name;
        RETURN NEXT;
      END LOOP;
      RETURN;
    END IF;
  END LOOP;
END $$;

-- Query 3 by profile: p_count VMs of one profile.
CREATE FUNCTION gis.gang_place_profile(p_profile text, p_count integer, p_distinct_hosts boolean DEFAULT true,
                                       p_network text DEFAULT NULL, p_labels jsonb DEFAULT '{}')
RETURNS TABLE (vm_index integer, host_id bigint, host text, network text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  p record;
BEGIN
  PERFORM gis.check_range('count', p_count, 1, 1000);
  SELECT * INTO p FROM gis.profiles WHERE id = gis.profile_id('profile', p_profile);
  RETURN QUERY SELECT * FROM gis.gang_place(array_fill(p.memory_mb, ARRAY[p_count]),
                                            array_fill(p.vcpus, ARRAY[p_count]),
                                            array_fill(p.disk_gb, ARRAY[p_count]),
                                            p_distinct_hosts, p_network, p.arch, p_labels);
END $$;

-- Query 4: capacity, and what runs where.
CREATE VIEW gis.capacity_by_network WITH (security_invoker = true) AS
  SELECT n.name AS network, s.name AS site,
         count(h.id) FILTER (WHERE h.state = 'up') AS hosts_up,
         count(h.id) AS hosts,
         coalesce(sum(h.cpus) FILTER (WHERE h.state = 'up'), 0) AS vcpus,
         coalesce(sum(h.free_vcpus) FILTER (WHERE h.state = 'up'), 0) AS free_vcpus,
         coalesce(sum(h.memory_mb) FILTER (WHERE h.state = 'up'), 0) AS memory_mb,
         coalesce(sum(h.free_memory_mb) FILTER (WHERE h.state = 'up'), 0) AS free_memory_mb,
         coalesce(sum(h.disk_gb) FILTER (WHERE h.state = 'up'), 0) AS disk_gb,
         coalesce(sum(h.free_disk_gb) FILTER (WHERE h.state = 'up'), 0) AS free_disk_gb
    FROM gis.networks n JOIN gis.sites s ON s.id = n.site_id LEFT JOIN gis.hosts h ON h.network_id = n.id
   GROUP BY n.name, s.name;

CREATE VIEW gis.capacity_by_site WITH (security_invoker = true) AS
  SELECT site, sum(hosts_up)::bigint AS hosts_up, sum(hosts)::bigint AS hosts,
         sum(vcpus)::bigint AS vcpus, sum(free_vcpus)::bigint AS free_vcpus,
         sum(memory_mb)::bigint AS memory_mb, sum(free_memory_mb)::bigint AS free_memory_mb,
         sum(disk_gb)::bigint AS disk_gb, sum(free_disk_gb)::bigint AS free_disk_gb
    FROM gis.capacity_by_network GROUP BY site;

-- Virtual to physical: every VM that holds capacity and where it runs.
CREATE VIEW gis.vm_placement WITH (security_invoker = true) AS
  SELECT v.id AS vm_id, v.name AS vm, w.name AS workspace, u.name AS owner, v.state::text AS state,
         v.vcpus, v.memory_mb, h.name AS host, n.name AS network, s.name AS site
    FROM gis.vms v JOIN gis.workspaces w ON w.id = v.workspace_id JOIN gis.users u ON u.id = v.owner_id
         JOIN gis.hosts h ON h.id = v.host_id JOIN gis.networks n ON n.id = h.network_id
         JOIN gis.sites s ON s.id = n.site_id
   WHERE gis.holds_capacity(v.state);

-- Physical to virtual: what a failure of the host would hit.
CREATE FUNCTION gis.host_failure_impact(p_host text)
RETURNS TABLE (vm_id bigint, vm text, workspace text, owner text, state text, memory_mb bigint,
               has_checkpoint boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_host bigint := gis.host_id('host', p_host);
BEGIN
  RETURN QUERY
  SELECT v.id, v.name, w.name, u.name, v.state::text, v.memory_mb,
         EXISTS (SELECT 1 FROM gis.checkpoints c WHERE c.vm_id = v.id)
    FROM gis.virtualization z JOIN gis.vms v ON v.id = z.virtual_id
         JOIN gis.workspaces w ON w.id = v.workspace_id JOIN gis.users u ON u.id = v.owner_id
   WHERE z.physical_id = v_host AND z.role = 'runs_on' AND z.virtual_kind = 'vm'
   ORDER BY u.name, w.name, v.name;
END $$;
