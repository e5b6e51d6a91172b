-- =============================================================================
-- Legacy Django tables read by migration phases 1-4: bare tables only.
--
-- Purpose: the project's own copy of the legacy (Brius "MDW", Django app `dispatch`)
-- schema, with the production table and column names and types. The sandbox generator
-- (include/sandbox) runs this file, bulk-loads the tables with COPY, then runs
-- constraints.sql (primary keys, unique constraints, Django's deferrable foreign keys
-- and FK indexes), because loading into bare tables and building constraints afterwards
-- is about twice as fast as loading into indexed ones.
--
-- Idempotent: every table is dropped (CASCADE) and recreated, so rebuilding the sandbox
-- always starts from empty tables whatever an earlier, possibly interrupted, build left.
-- The generator runs it in the same transaction as the load.
--
-- No seed rows: content-type ids, group ids, courses etc. are written by the generator,
-- so nothing here fixes a content-type id (they differ between databases).
-- "order" and "on" are reserved words and stay double-quoted, as in production.
-- =============================================================================

DROP TABLE IF EXISTS
    django_content_type, auth_permission, auth_group, auth_user, auth_user_groups,
    dispatch_office, dispatch_office_doctors, dispatch_usersetting, dispatch_doctorsetting,
    dispatch_course, dispatch_product, dispatch_patient, dispatch_jaw, dispatch_instruction,
    dispatch_project, dispatch_plan, dispatch_comment, dispatch_record,
    dispatch_record_attachments, dispatch_state, dispatch_category, dispatch_template,
    dispatch_template_predecessors, dispatch_task, dispatch_file
    CASCADE;

-- ------------------------------------------------------------- Django contrib ----
CREATE TABLE django_content_type (
    id        serial       NOT NULL,
    app_label varchar(100) NOT NULL,
    model     varchar(100) NOT NULL
);

CREATE TABLE auth_permission (
    id              serial       NOT NULL,
    name            varchar(255) NOT NULL,
    content_type_id integer      NOT NULL,
    codename        varchar(100) NOT NULL
);

-- Group ids used as role markers: 1 patient, 2 doctor, 4 admin, 5 master, 11 technician.
CREATE TABLE auth_group (
    id   serial       NOT NULL,
    name varchar(150) NOT NULL
);

-- Every person; ids are sparse; e-mail is '' when absent and not unique.
CREATE TABLE auth_user (
    id           serial       NOT NULL,
    password     varchar(128) NOT NULL,
    last_login   timestamptz  NULL,
    is_superuser boolean      NOT NULL,
    username     varchar(150) NOT NULL,
    first_name   varchar(150) NOT NULL,
    last_name    varchar(150) NOT NULL,
    email        varchar(254) NOT NULL,
    is_staff     boolean      NOT NULL,
    is_active    boolean      NOT NULL,
    date_joined  timestamptz  NOT NULL
);

-- A user may have 0, 1 or several groups.
CREATE TABLE auth_user_groups (
    id       serial  NOT NULL,
    user_id  integer NOT NULL,
    group_id integer NOT NULL
);

-- ------------------------------------------------------------------- offices ----
-- tax_rate has mixed units (fraction or percent); emails is a flag, not an address.
CREATE TABLE dispatch_office (
    id             serial       NOT NULL,
    doctor_id      integer      NOT NULL,
    name           varchar(255) NULL,
    address        varchar(255) NULL,
    apt            varchar(64)  NULL,
    city           varchar(128) NULL,
    state          varchar(64)  NULL,
    zip            varchar(20)  NULL,
    country        varchar(64)  NULL,
    phone          varchar(32)  NULL,
    tax_rate       numeric(8,4) NOT NULL DEFAULT 0,
    valid          boolean      NOT NULL DEFAULT true,
    sq_customer_id varchar(255) NULL,
    emails         boolean      NOT NULL DEFAULT true
);

CREATE TABLE dispatch_office_doctors (
    id        serial  NOT NULL,
    office_id integer NOT NULL,
    user_id   integer NOT NULL
);

-- ------------------------------------------------------------- user settings ----
CREATE TABLE dispatch_usersetting (
    id          serial  NOT NULL,
    user_id     integer NOT NULL,
    emails      boolean NOT NULL DEFAULT true,
    require_2fa boolean NULL
);

-- The main "is a doctor" signal.
CREATE TABLE dispatch_doctorsetting (
    id                   serial        NOT NULL,
    user_id              integer       NOT NULL,
    clinical_preferences text          NULL,
    sq_customer_id       varchar(255)  NULL,
    promised_payment     boolean       NULL,
    credit               numeric(10,2) NULL,
    tier_type            integer       NULL,
    tier_finish          date          NULL,
    installment_payments boolean       NULL,
    baa_agreed_at        timestamptz   NULL,
    eula_agreed_at       timestamptz   NULL,
    company_account      boolean       NULL
);

-- ------------------------------------------------------- courses and products ----
-- Course ids: 1 main, 2 refinement, 3 replacement, 4 any, 7 invoice, 8 merchandise.
CREATE TABLE dispatch_course (
    id            serial       NOT NULL,
    name          varchar(255) NOT NULL,
    type          integer      NULL,
    customization text         NULL
);

CREATE TABLE dispatch_product (
    id            serial       NOT NULL,
    name          varchar(255) NULL,
    description   text         NULL,
    free          boolean      NOT NULL DEFAULT false,
    deleted       boolean      NOT NULL DEFAULT false,
    customization text         NULL,
    type          integer      NULL,
    substitute    boolean      NULL,
    course_id     integer      NULL
);

-- ------------------------------------------------------------------ patients ----
-- Names and e-mail live in auth_user; schemes is JSON text that does not always parse.
CREATE TABLE dispatch_patient (
    id           serial      NOT NULL,
    user_id      integer     NOT NULL,
    doctor_id    integer     NULL,
    office_id    integer     NULL,
    birthdate    date        NULL,
    sex          integer     NULL,
    status       integer     NOT NULL DEFAULT 1,
    archived     boolean     NOT NULL DEFAULT false,
    suspended    boolean     NOT NULL DEFAULT false,
    schemes      text        NULL,
    suffix       varchar(10) NULL,
    submitted_at timestamptz NULL,
    updated_at   timestamptz NULL
);

-- ---------------------------------------------------------------------- jaws ----
-- Upper/lower is only known through dispatch_instruction.upper_jaw_id / lower_jaw_id.
CREATE TABLE dispatch_jaw (
    id            serial      NOT NULL,
    bond_teeth    varchar(16) NOT NULL DEFAULT '0000000000000000',
    extract_teeth varchar(16) NOT NULL DEFAULT '0000000000000000',
    reason        text        NULL,
    product_id    integer     NULL,
    labial        boolean     NOT NULL DEFAULT false
);

-- -------------------------------------------------------------- instructions ----
-- The order. No doctor_id/office_id: both come through dispatch_patient.
CREATE TABLE dispatch_instruction (
    id                serial        NOT NULL,
    patient_id        integer       NOT NULL,
    course_id         integer       NULL,
    status            integer       NOT NULL DEFAULT 0,
    submitted_at      timestamptz   NULL,
    updated_at        timestamptz   NULL,
    notes             text          NULL DEFAULT '',
    complaint         text          NULL DEFAULT '',
    conditions        text          NULL DEFAULT '',
    objective         text          NULL DEFAULT '',
    scanner_notes     text          NULL DEFAULT '',
    exports           text          NULL DEFAULT '{}',
    price             numeric(10,2) NULL,
    model             integer       NULL,
    scanner           integer       NULL,
    cbct              boolean       NOT NULL DEFAULT false,
    comprehensive     boolean       NOT NULL DEFAULT false,
    accept_extraction boolean       NOT NULL DEFAULT false,
    deleted           boolean       NOT NULL DEFAULT false,
    "order"           integer       NULL,
    upper_jaw_id      integer       NULL,
    lower_jaw_id      integer       NULL,
    suffix            varchar(16)   NULL
);

-- ------------------------------------------------------------------ projects ----
-- No patient or instruction column: linked to orders through dispatch_plan.project_id.
CREATE TABLE dispatch_project (
    id         serial       NOT NULL,
    uid        uuid         NOT NULL,
    name       varchar(255) NOT NULL DEFAULT '',
    size       bigint       NOT NULL DEFAULT 0,
    type       integer      NOT NULL,
    status     integer      NOT NULL DEFAULT 0,
    creator_id integer      NULL,
    created_at timestamptz  NOT NULL,
    public     boolean      NOT NULL DEFAULT false
);

-- Several plans may share one project.
CREATE TABLE dispatch_plan (
    id             serial       NOT NULL,
    instruction_id integer      NOT NULL,
    project_id     integer      NOT NULL,
    notes          text         NULL,
    number         integer      NULL,
    name           varchar(255) NULL,
    original       boolean      NULL
);

CREATE TABLE dispatch_comment (
    id         serial      NOT NULL,
    plan_id    integer     NOT NULL,
    author_id  integer     NOT NULL,
    text       text        NULL,
    created_at timestamptz NOT NULL
);

-- ------------------------------------------------------------------- records ----
-- Generic relation: (target_type_id -> django_content_type, target_id -> any row, no FK).
CREATE TABLE dispatch_record (
    id             serial      NOT NULL,
    target_id      integer     NOT NULL,
    type           integer     NULL,
    created_at     timestamptz NOT NULL,
    text           text        NOT NULL,
    author_id      integer     NULL,
    target_type_id integer     NULL,
    group_id       integer     NULL,
    public         boolean     NULL
);

CREATE TABLE dispatch_record_attachments (
    id        serial  NOT NULL,
    record_id integer NOT NULL,
    file_id   integer NOT NULL
);

-- -------------------------------------------------------------------- states ----
-- Status codes 11/12; instruction_id is nullable.
CREATE TABLE dispatch_state (
    id             serial      NOT NULL,
    status         integer     NOT NULL,
    "on"           boolean     NOT NULL,
    changed_at     timestamptz NOT NULL,
    actor_id       integer     NULL,
    instruction_id integer     NULL
);

-- --------------------------------------------------------- workflow templates ----
CREATE TABLE dispatch_category (
    id        serial       NOT NULL,
    name      varchar(255) NOT NULL,
    parent_id integer      NULL
);

CREATE TABLE dispatch_template (
    id          serial       NOT NULL,
    task_name   varchar(255) NULL,
    action_name varchar(255) NULL,
    text_name   varchar(255) NULL,
    function    integer      NULL,
    status      integer      NULL,
    duration    integer      NOT NULL DEFAULT 0,
    category_id integer      NULL,
    course_id   integer      NULL,
    predefined  boolean      NOT NULL DEFAULT false,
    read_only   boolean      NOT NULL DEFAULT false,
    extensions  varchar(255) NULL,
    alerts      text         NULL,
    separate    boolean      NULL
);

-- from_template_id's predecessor is to_template_id (Django self-M2M, symmetrical=False).
CREATE TABLE dispatch_template_predecessors (
    id               serial  NOT NULL,
    from_template_id integer NOT NULL,
    to_template_id   integer NOT NULL
);

-- --------------------------------------------------------------------- tasks ----
-- jaw: 1 both, 2 upper, 3 lower.
CREATE TABLE dispatch_task (
    id             serial      NOT NULL,
    instruction_id integer     NOT NULL,
    template_id    integer     NOT NULL,
    plan_id        integer     NULL,
    file_id        integer     NULL,
    actor_id       integer     NULL,
    checked        boolean     NOT NULL DEFAULT false,
    done_at        timestamptz NULL,
    text           text        NULL,
    jaw            integer     NULL
);

-- --------------------------------------------------------------------- files ----
-- Insert-only (no updated_at); name + ext can give a double extension ('.stl.stl').
CREATE TABLE dispatch_file (
    id             serial       NOT NULL,
    uid            uuid         NOT NULL,
    name           varchar(255) NULL,
    ext            varchar(16)  NULL,
    size           bigint       NOT NULL DEFAULT 0,
    type           integer      NOT NULL,
    instruction_id integer      NULL,
    created_at     timestamptz  NOT NULL,
    description    text         NULL,
    product_id     integer      NULL,
    parameters     text         NULL,
    record_id      integer      NULL,
    status         integer      NULL
);
