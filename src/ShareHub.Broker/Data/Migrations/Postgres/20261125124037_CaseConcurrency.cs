using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ShareHub.Broker.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class CaseConcurrency : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "Revision",
                table: "cases",
                type: "integer",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Revision",
                table: "cases");
        }
    }
}
