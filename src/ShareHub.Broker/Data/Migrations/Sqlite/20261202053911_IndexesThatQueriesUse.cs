using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ShareHub.Broker.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class IndexesThatQueriesUse : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_outbox_CaseId",
                table: "outbox");

            migrationBuilder.DropIndex(
                name: "IX_audit_entries_DeliveryId",
                table: "audit_entries");

            migrationBuilder.DropIndex(
                name: "IX_audit_entries_Provider",
                table: "audit_entries");

            migrationBuilder.DropIndex(
                name: "IX_audit_entries_Recipient",
                table: "audit_entries");

            migrationBuilder.CreateIndex(
                name: "IX_outbox_CaseId",
                table: "outbox",
                column: "CaseId",
                filter: "\"CaseId\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_audit_entries_CaseReference",
                table: "audit_entries",
                column: "CaseReference",
                filter: "\"CaseReference\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_outbox_CaseId",
                table: "outbox");

            migrationBuilder.DropIndex(
                name: "IX_audit_entries_CaseReference",
                table: "audit_entries");

            migrationBuilder.CreateIndex(
                name: "IX_outbox_CaseId",
                table: "outbox",
                column: "CaseId");

            migrationBuilder.CreateIndex(
                name: "IX_audit_entries_DeliveryId",
                table: "audit_entries",
                column: "DeliveryId");

            migrationBuilder.CreateIndex(
                name: "IX_audit_entries_Provider",
                table: "audit_entries",
                column: "Provider");

            migrationBuilder.CreateIndex(
                name: "IX_audit_entries_Recipient",
                table: "audit_entries",
                column: "Recipient");
        }
    }
}
