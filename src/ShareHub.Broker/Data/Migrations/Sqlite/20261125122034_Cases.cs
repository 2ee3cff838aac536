using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ShareHub.Broker.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Cases : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterColumn<Guid>(
                name: "SignalId",
                table: "outbox",
                type: "TEXT",
                nullable: true,
                oldClrType: typeof(Guid),
                oldType: "TEXT");

            migrationBuilder.AddColumn<Guid>(
                name: "CaseId",
                table: "outbox",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "MessageType",
                table: "outbox",
                type: "TEXT",
                maxLength: 32,
                nullable: false,
                defaultValue: "DeliverSignal"); // rows written before cases all carry DeliverSignal

            migrationBuilder.CreateTable(
                name: "cases",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    Reference = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    Owner = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    OpenedBy = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    Phase = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Weighing = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: false),
                    OpenedAt = table.Column<DateTimeOffset>(type: "TEXT", nullable: false),
                    PhaseChangedAt = table.Column<DateTimeOffset>(type: "TEXT", nullable: false),
                    ClosedAt = table.Column<DateTimeOffset>(type: "TEXT", nullable: true),
                    RetainUntil = table.Column<long>(type: "INTEGER", nullable: true),
                    EventsPurgedAt = table.Column<DateTimeOffset>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_cases", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "case_participants",
                columns: table => new
                {
                    CaseId = table.Column<Guid>(type: "TEXT", nullable: false),
                    Organisation = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    AddedAt = table.Column<DateTimeOffset>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_case_participants", x => new { x.CaseId, x.Organisation });
                    table.ForeignKey(
                        name: "FK_case_participants_cases_CaseId",
                        column: x => x.CaseId,
                        principalTable: "cases",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "case_signals",
                columns: table => new
                {
                    CaseId = table.Column<Guid>(type: "TEXT", nullable: false),
                    SignalId = table.Column<Guid>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_case_signals", x => new { x.CaseId, x.SignalId });
                    table.ForeignKey(
                        name: "FK_case_signals_cases_CaseId",
                        column: x => x.CaseId,
                        principalTable: "cases",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "FK_case_signals_signals_SignalId",
                        column: x => x.SignalId,
                        principalTable: "signals",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "hit_no_hit_questions",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    CaseId = table.Column<Guid>(type: "TEXT", nullable: false),
                    AskedBy = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    SubjectType = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    SubjectPseudonym = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    Category = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    AskedAt = table.Column<DateTimeOffset>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_hit_no_hit_questions", x => x.Id);
                    table.ForeignKey(
                        name: "FK_hit_no_hit_questions_cases_CaseId",
                        column: x => x.CaseId,
                        principalTable: "cases",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "hit_no_hit_answers",
                columns: table => new
                {
                    QuestionId = table.Column<Guid>(type: "TEXT", nullable: false),
                    Organisation = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    State = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    DeliveryId = table.Column<Guid>(type: "TEXT", nullable: true),
                    AnsweredAt = table.Column<DateTimeOffset>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_hit_no_hit_answers", x => new { x.QuestionId, x.Organisation });
                    table.ForeignKey(
                        name: "FK_hit_no_hit_answers_hit_no_hit_questions_QuestionId",
                        column: x => x.QuestionId,
                        principalTable: "hit_no_hit_questions",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_outbox_CaseId",
                table: "outbox",
                column: "CaseId");

            migrationBuilder.CreateIndex(
                name: "IX_outbox_SignalId",
                table: "outbox",
                column: "SignalId");

            migrationBuilder.CreateIndex(
                name: "IX_case_signals_SignalId",
                table: "case_signals",
                column: "SignalId");

            migrationBuilder.CreateIndex(
                name: "IX_cases_ClosedAt",
                table: "cases",
                column: "ClosedAt");

            migrationBuilder.CreateIndex(
                name: "IX_cases_Reference",
                table: "cases",
                column: "Reference",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_cases_RetainUntil",
                table: "cases",
                column: "RetainUntil");

            migrationBuilder.CreateIndex(
                name: "IX_hit_no_hit_questions_CaseId",
                table: "hit_no_hit_questions",
                column: "CaseId");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "case_participants");

            migrationBuilder.DropTable(
                name: "case_signals");

            migrationBuilder.DropTable(
                name: "hit_no_hit_answers");

            migrationBuilder.DropTable(
                name: "hit_no_hit_questions");

            migrationBuilder.DropTable(
                name: "cases");

            migrationBuilder.DropIndex(
                name: "IX_outbox_CaseId",
                table: "outbox");

            migrationBuilder.DropIndex(
                name: "IX_outbox_SignalId",
                table: "outbox");

            migrationBuilder.DropColumn(
                name: "CaseId",
                table: "outbox");

            migrationBuilder.DropColumn(
                name: "MessageType",
                table: "outbox");

            migrationBuilder.AlterColumn<Guid>(
                name: "SignalId",
                table: "outbox",
                type: "TEXT",
                nullable: false,
                defaultValue: new Guid("00000000-0000-0000-0000-000000000000"),
                oldClrType: typeof(Guid),
                oldType: "TEXT",
                oldNullable: true);
        }
    }
}
