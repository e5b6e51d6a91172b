-- =============================================================================
-- Keys, Django's deferrable foreign keys and FK indexes of the tables in schema.sql.
--
-- Run after the bulk load, in the same transaction: building keys and indexes once over
-- loaded tables is about twice as fast as maintaining them row by row during COPY, and
-- each foreign key is validated once, by a single join. The foreign keys are
-- DEFERRABLE INITIALLY DEFERRED because that is how Django creates them; the generic
-- relation dispatch_record.target_id has no foreign key, as in production.
-- Finally every id sequence is moved past the loaded ids, so rows inserted later (live
-- drift in sync tests) get fresh ids the way Django would give them.
-- =============================================================================

-- ------------------------------------------------------------- primary keys ----
ALTER TABLE django_content_type            ADD CONSTRAINT django_content_type_pkey            PRIMARY KEY (id);
ALTER TABLE auth_permission                ADD CONSTRAINT auth_permission_pkey                PRIMARY KEY (id);
ALTER TABLE auth_group                     ADD CONSTRAINT auth_group_pkey                     PRIMARY KEY (id);
ALTER TABLE auth_user                      ADD CONSTRAINT auth_user_pkey                      PRIMARY KEY (id);
ALTER TABLE auth_user_groups               ADD CONSTRAINT auth_user_groups_pkey               PRIMARY KEY (id);
ALTER TABLE dispatch_office                ADD CONSTRAINT dispatch_office_pkey                PRIMARY KEY (id);
ALTER TABLE dispatch_office_doctors        ADD CONSTRAINT dispatch_office_doctors_pkey        PRIMARY KEY (id);
ALTER TABLE dispatch_usersetting           ADD CONSTRAINT dispatch_usersetting_pkey           PRIMARY KEY (id);
ALTER TABLE dispatch_doctorsetting         ADD CONSTRAINT dispatch_doctorsetting_pkey         PRIMARY KEY (id);
ALTER TABLE dispatch_course                ADD CONSTRAINT dispatch_course_pkey                PRIMARY KEY (id);
ALTER TABLE dispatch_product               ADD CONSTRAINT dispatch_product_pkey               PRIMARY KEY (id);
ALTER TABLE dispatch_patient               ADD CONSTRAINT dispatch_patient_pkey               PRIMARY KEY (id);
ALTER TABLE dispatch_jaw                   ADD CONSTRAINT dispatch_jaw_pkey                   PRIMARY KEY (id);
ALTER TABLE dispatch_instruction           ADD CONSTRAINT dispatch_instruction_pkey           PRIMARY KEY (id);
ALTER TABLE dispatch_project               ADD CONSTRAINT dispatch_project_pkey               PRIMARY KEY (id);
ALTER TABLE dispatch_plan                  ADD CONSTRAINT dispatch_plan_pkey                  PRIMARY KEY (id);
ALTER TABLE dispatch_comment               ADD CONSTRAINT dispatch_comment_pkey               PRIMARY KEY (id);
ALTER TABLE dispatch_record                ADD CONSTRAINT dispatch_record_pkey                PRIMARY KEY (id);
ALTER TABLE dispatch_record_attachments    ADD CONSTRAINT dispatch_record_attachments_pkey    PRIMARY KEY (id);
ALTER TABLE dispatch_state                 ADD CONSTRAINT dispatch_state_pkey                 PRIMARY KEY (id);
ALTER TABLE dispatch_category              ADD CONSTRAINT dispatch_category_pkey              PRIMARY KEY (id);
ALTER TABLE dispatch_template              ADD CONSTRAINT dispatch_template_pkey              PRIMARY KEY (id);
ALTER TABLE dispatch_template_predecessors ADD CONSTRAINT dispatch_template_predecessors_pkey PRIMARY KEY (id);
ALTER TABLE dispatch_task                  ADD CONSTRAINT dispatch_task_pkey                  PRIMARY KEY (id);
ALTER TABLE dispatch_file                  ADD CONSTRAINT dispatch_file_pkey                  PRIMARY KEY (id);

-- ---------------------------------------------------------- unique constraints ----
ALTER TABLE django_content_type     ADD CONSTRAINT django_content_type_app_label_model_uniq       UNIQUE (app_label, model);
ALTER TABLE auth_permission         ADD CONSTRAINT auth_permission_content_type_id_codename_uniq  UNIQUE (content_type_id, codename);
ALTER TABLE auth_group              ADD CONSTRAINT auth_group_name_key                            UNIQUE (name);
ALTER TABLE auth_user               ADD CONSTRAINT auth_user_username_key                         UNIQUE (username);
ALTER TABLE auth_user_groups        ADD CONSTRAINT auth_user_groups_user_id_group_id_uniq         UNIQUE (user_id, group_id);
ALTER TABLE dispatch_office_doctors ADD CONSTRAINT dispatch_office_doctors_uniq                   UNIQUE (office_id, user_id);
ALTER TABLE dispatch_usersetting    ADD CONSTRAINT dispatch_usersetting_user_id_key               UNIQUE (user_id);
ALTER TABLE dispatch_doctorsetting  ADD CONSTRAINT dispatch_doctorsetting_user_id_key             UNIQUE (user_id);
ALTER TABLE dispatch_project        ADD CONSTRAINT dispatch_project_uid_key                       UNIQUE (uid);
ALTER TABLE dispatch_record_attachments ADD CONSTRAINT dispatch_record_attachments_uniq           UNIQUE (record_id, file_id);
ALTER TABLE dispatch_file           ADD CONSTRAINT dispatch_file_uid_key                          UNIQUE (uid);

-- ------------------------------------------------------------- foreign keys ----
ALTER TABLE auth_permission         ADD CONSTRAINT auth_permission_content_type_fk   FOREIGN KEY (content_type_id) REFERENCES django_content_type(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE auth_user_groups        ADD CONSTRAINT auth_user_groups_user_fk          FOREIGN KEY (user_id)         REFERENCES auth_user(id)           DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE auth_user_groups        ADD CONSTRAINT auth_user_groups_group_fk         FOREIGN KEY (group_id)        REFERENCES auth_group(id)          DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE dispatch_office         ADD CONSTRAINT dispatch_office_doctor_fk         FOREIGN KEY (doctor_id) REFERENCES auth_user(id)       DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_office_doctors ADD CONSTRAINT dispatch_office_doctors_office_fk FOREIGN KEY (office_id) REFERENCES dispatch_office(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_office_doctors ADD CONSTRAINT dispatch_office_doctors_user_fk   FOREIGN KEY (user_id)   REFERENCES auth_user(id)       DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_usersetting    ADD CONSTRAINT dispatch_usersetting_user_fk      FOREIGN KEY (user_id)   REFERENCES auth_user(id)       DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_doctorsetting  ADD CONSTRAINT dispatch_doctorsetting_user_fk    FOREIGN KEY (user_id)   REFERENCES auth_user(id)       DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE dispatch_product        ADD CONSTRAINT dispatch_product_course_fk        FOREIGN KEY (course_id) REFERENCES dispatch_course(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_patient        ADD CONSTRAINT dispatch_patient_user_fk          FOREIGN KEY (user_id)   REFERENCES auth_user(id)       DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_patient        ADD CONSTRAINT dispatch_patient_doctor_fk        FOREIGN KEY (doctor_id) REFERENCES auth_user(id)       DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_patient        ADD CONSTRAINT dispatch_patient_office_fk        FOREIGN KEY (office_id) REFERENCES dispatch_office(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_jaw            ADD CONSTRAINT dispatch_jaw_product_fk           FOREIGN KEY (product_id) REFERENCES dispatch_product(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_instruction    ADD CONSTRAINT dispatch_instruction_patient_fk   FOREIGN KEY (patient_id)   REFERENCES dispatch_patient(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_instruction    ADD CONSTRAINT dispatch_instruction_course_fk    FOREIGN KEY (course_id)    REFERENCES dispatch_course(id)  DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_instruction    ADD CONSTRAINT dispatch_instruction_upper_fk     FOREIGN KEY (upper_jaw_id) REFERENCES dispatch_jaw(id)     DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_instruction    ADD CONSTRAINT dispatch_instruction_lower_fk     FOREIGN KEY (lower_jaw_id) REFERENCES dispatch_jaw(id)     DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE dispatch_project        ADD CONSTRAINT dispatch_project_creator_fk       FOREIGN KEY (creator_id)     REFERENCES auth_user(id)            DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_plan           ADD CONSTRAINT dispatch_plan_instruction_fk      FOREIGN KEY (instruction_id) REFERENCES dispatch_instruction(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_plan           ADD CONSTRAINT dispatch_plan_project_fk          FOREIGN KEY (project_id)     REFERENCES dispatch_project(id)     DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_comment        ADD CONSTRAINT dispatch_comment_plan_fk          FOREIGN KEY (plan_id)        REFERENCES dispatch_plan(id)        DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_comment        ADD CONSTRAINT dispatch_comment_author_fk        FOREIGN KEY (author_id)      REFERENCES auth_user(id)            DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE dispatch_record         ADD CONSTRAINT dispatch_record_author_fk         FOREIGN KEY (author_id)      REFERENCES auth_user(id)           DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_record         ADD CONSTRAINT dispatch_record_ct_fk             FOREIGN KEY (target_type_id) REFERENCES django_content_type(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_record         ADD CONSTRAINT dispatch_record_group_fk          FOREIGN KEY (group_id)       REFERENCES auth_group(id)          DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_record_attachments ADD CONSTRAINT dispatch_record_att_record_fk FOREIGN KEY (record_id)      REFERENCES dispatch_record(id)     DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_record_attachments ADD CONSTRAINT dispatch_record_att_file_fk   FOREIGN KEY (file_id)        REFERENCES dispatch_file(id)       DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE dispatch_state          ADD CONSTRAINT dispatch_state_actor_fk           FOREIGN KEY (actor_id)       REFERENCES auth_user(id)            DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_state          ADD CONSTRAINT dispatch_state_instruction_fk     FOREIGN KEY (instruction_id) REFERENCES dispatch_instruction(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE dispatch_category       ADD CONSTRAINT dispatch_category_parent_fk       FOREIGN KEY (parent_id)   REFERENCES dispatch_category(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_template       ADD CONSTRAINT dispatch_template_category_fk     FOREIGN KEY (category_id) REFERENCES dispatch_category(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_template       ADD CONSTRAINT dispatch_template_course_fk       FOREIGN KEY (course_id)   REFERENCES dispatch_course(id)   DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_template_predecessors ADD CONSTRAINT dispatch_tpl_pred_from_fk  FOREIGN KEY (from_template_id) REFERENCES dispatch_template(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_template_predecessors ADD CONSTRAINT dispatch_tpl_pred_to_fk    FOREIGN KEY (to_template_id)   REFERENCES dispatch_template(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE dispatch_task           ADD CONSTRAINT dispatch_task_instruction_fk      FOREIGN KEY (instruction_id) REFERENCES dispatch_instruction(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_task           ADD CONSTRAINT dispatch_task_template_fk         FOREIGN KEY (template_id)    REFERENCES dispatch_template(id)    DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_task           ADD CONSTRAINT dispatch_task_plan_fk             FOREIGN KEY (plan_id)        REFERENCES dispatch_plan(id)        DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_task           ADD CONSTRAINT dispatch_task_file_fk             FOREIGN KEY (file_id)        REFERENCES dispatch_file(id)        DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_task           ADD CONSTRAINT dispatch_task_actor_fk            FOREIGN KEY (actor_id)       REFERENCES auth_user(id)            DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE dispatch_file           ADD CONSTRAINT dispatch_file_instruction_fk      FOREIGN KEY (instruction_id) REFERENCES dispatch_instruction(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_file           ADD CONSTRAINT dispatch_file_product_fk          FOREIGN KEY (product_id)     REFERENCES dispatch_product(id)     DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE dispatch_file           ADD CONSTRAINT dispatch_file_record_fk           FOREIGN KEY (record_id)      REFERENCES dispatch_record(id)      DEFERRABLE INITIALLY DEFERRED;

-- ---------------------------------------------- indexes (Django's FK indexes) ----
CREATE INDEX auth_permission_content_type_idx    ON auth_permission (content_type_id);
CREATE INDEX auth_user_groups_user_idx           ON auth_user_groups (user_id);
CREATE INDEX auth_user_groups_group_idx          ON auth_user_groups (group_id);
CREATE INDEX dispatch_office_doctor_idx          ON dispatch_office (doctor_id);
CREATE INDEX dispatch_office_doctors_office_idx  ON dispatch_office_doctors (office_id);
CREATE INDEX dispatch_office_doctors_user_idx    ON dispatch_office_doctors (user_id);
CREATE INDEX dispatch_product_course_idx         ON dispatch_product (course_id);
CREATE INDEX dispatch_patient_user_idx           ON dispatch_patient (user_id);
CREATE INDEX dispatch_patient_doctor_idx         ON dispatch_patient (doctor_id);
CREATE INDEX dispatch_patient_office_idx         ON dispatch_patient (office_id);
CREATE INDEX dispatch_patient_updated_idx        ON dispatch_patient (updated_at);
CREATE INDEX dispatch_jaw_product_idx            ON dispatch_jaw (product_id);
CREATE INDEX dispatch_instruction_patient_idx    ON dispatch_instruction (patient_id);
CREATE INDEX dispatch_instruction_course_idx     ON dispatch_instruction (course_id);
CREATE INDEX dispatch_instruction_upper_jaw_idx  ON dispatch_instruction (upper_jaw_id);
CREATE INDEX dispatch_instruction_lower_jaw_idx  ON dispatch_instruction (lower_jaw_id);
CREATE INDEX dispatch_instruction_updated_idx    ON dispatch_instruction (updated_at);
CREATE INDEX dispatch_instruction_submitted_idx  ON dispatch_instruction (submitted_at);
CREATE INDEX dispatch_project_creator_idx        ON dispatch_project (creator_id);
CREATE INDEX dispatch_plan_instruction_idx       ON dispatch_plan (instruction_id);
CREATE INDEX dispatch_plan_project_idx           ON dispatch_plan (project_id);
CREATE INDEX dispatch_comment_plan_idx           ON dispatch_comment (plan_id);
CREATE INDEX dispatch_comment_author_idx         ON dispatch_comment (author_id);
CREATE INDEX dispatch_record_target_idx          ON dispatch_record (target_type_id, target_id);
CREATE INDEX dispatch_record_author_idx          ON dispatch_record (author_id);
CREATE INDEX dispatch_record_group_idx           ON dispatch_record (group_id);
CREATE INDEX dispatch_record_created_idx         ON dispatch_record (created_at);
CREATE INDEX dispatch_record_attachments_record_idx ON dispatch_record_attachments (record_id);
CREATE INDEX dispatch_record_attachments_file_idx   ON dispatch_record_attachments (file_id);
CREATE INDEX dispatch_state_actor_idx            ON dispatch_state (actor_id);
CREATE INDEX dispatch_state_instruction_idx      ON dispatch_state (instruction_id);
CREATE INDEX dispatch_state_changed_idx          ON dispatch_state (changed_at);
CREATE INDEX dispatch_category_parent_idx        ON dispatch_category (parent_id);
CREATE INDEX dispatch_template_category_idx      ON dispatch_template (category_id);
CREATE INDEX dispatch_template_course_idx        ON dispatch_template (course_id);
CREATE INDEX dispatch_tpl_pred_from_idx          ON dispatch_template_predecessors (from_template_id);
CREATE INDEX dispatch_tpl_pred_to_idx            ON dispatch_template_predecessors (to_template_id);
CREATE INDEX dispatch_task_instruction_idx       ON dispatch_task (instruction_id);
CREATE INDEX dispatch_task_template_idx          ON dispatch_task (template_id);
CREATE INDEX dispatch_task_plan_idx              ON dispatch_task (plan_id);
CREATE INDEX dispatch_task_file_idx              ON dispatch_task (file_id);
CREATE INDEX dispatch_task_actor_idx             ON dispatch_task (actor_id);
CREATE INDEX dispatch_file_instruction_idx       ON dispatch_file (instruction_id);
CREATE INDEX dispatch_file_product_idx           ON dispatch_file (product_id);
CREATE INDEX dispatch_file_record_idx            ON dispatch_file (record_id);
CREATE INDEX dispatch_file_created_idx           ON dispatch_file (created_at);

-- --------------------------------------------------------- sequences past ids ----
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'django_content_type', 'auth_permission', 'auth_group', 'auth_user', 'auth_user_groups',
        'dispatch_office', 'dispatch_office_doctors', 'dispatch_usersetting',
        'dispatch_doctorsetting', 'dispatch_course', 'dispatch_product', 'dispatch_patient',
        'dispatch_jaw', 'dispatch_instruction', 'dispatch_project', 'dispatch_plan',
        'dispatch_comment', 'dispatch_record', 'dispatch_record_attachments', 'dispatch_state',
        'dispatch_category', 'dispatch_template', 'dispatch_template_predecessors',
        'dispatch_task', 'dispatch_file']
    LOOP
        EXECUTE format(
            'SELECT setval(pg_get_serial_sequence(%L, ''id''), coalesce(max(id), 0) + 1, false) FROM %I',
            t, t);
    END LOOP;
END
$$;
